"""Runs by name (what the command line does): train_run, evaluate_checkpoint, the builders."""
import os

import pytest

import pydl
from pydl.data import transforms as T
from pydl.train import runs


def test_train_run_on_spirals_then_evaluate_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    r = runs.train_run("mlp", "spirals", epochs=25, lr=0.03, optimizer="adam", scheduler="none", out=str(out),
                       val_fraction=0.1, model_args={"hidden": [64]}, progress=False, topk=(2,))
    assert r["test_accuracy"] > 0.85 and r["epochs_run"] == 25
    assert r["config"]["model_kwargs"] == {"in_features": 2, "num_classes": 3, "hidden": [64]}
    assert r["config"]["mean"] is None                       # points, not images: no normalisation
    assert {"checkpoint.safetensors", "best.safetensors", "log.jsonl"} <= set(os.listdir(out))
    m = runs.evaluate_checkpoint(out, topk=(2,))              # the folder works as well as the file
    assert m["test_accuracy"] == pytest.approx(r["test_accuracy"]) and m["n"] == 300 and m["epoch"] == 25
    assert "test_top2" in m
    events = [line for line in open(out / "log.jsonl")]
    assert '"event": "test"' in events[-1]


def test_train_run_on_digits_normalises_and_augments(tmp_path):
    pytest.importorskip("sklearn")
    r = runs.train_run("mlp", "digits", epochs=3, lr=3e-3, augment="shift,erasing", out=str(tmp_path), seed=1,
                       val_fraction=0.0, progress=False)
    cfg = r["config"]
    assert len(cfg["mean"]) == 1 and 0.2 < cfg["mean"][0] < 0.4 and cfg["augment"] == "shift,erasing"
    assert r["test_accuracy"] > 0.8
    assert runs.evaluate_checkpoint(tmp_path / "checkpoint.safetensors")["test_accuracy"] == \
        pytest.approx(r["test_accuracy"])
    tta = runs.evaluate_checkpoint(tmp_path, tta=True)
    assert tta["test_accuracy"] > 0.8


def test_resume_through_train_run(tmp_path):
    kw = dict(epochs=4, lr=0.01, out=str(tmp_path / "a"), val_fraction=0.1, progress=False,
              model_args={"hidden": [16]})
    full = runs.train_run("mlp", "spirals", **kw)
    runs.train_run("mlp", "spirals", **dict(kw, epochs=2, out=str(tmp_path / "b")))
    # the second run was cut short after 2 epochs (its schedule was for 2): resume to 4 with the right one
    resumed = runs.train_run("mlp", "spirals", **dict(kw, out=str(tmp_path / "b"), resume=True))
    assert resumed["epochs_run"] == 4 and len(resumed["history"]["epoch"]) == 4
    assert full["history"]["epoch"] == resumed["history"]["epoch"]


def test_builders_and_name_errors():
    net = pydl.nn.Linear(2, 2)
    for name in runs.OPTIMIZERS:
        assert runs.build_optimizer(name, net.parameters(), 0.1) is not None
    for name in runs.SCHEDULERS:
        opt = runs.build_optimizer("sgd", net.parameters(), 0.1)
        sched, interval = runs.build_scheduler(name, opt, epochs=4, steps_per_epoch=10)
        assert interval in ("batch", "epoch") and (sched is None) == (name == "none")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; known: sgd, adam"):
        runs.train_run("mlp", "spirals", optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown scheduler"):
        runs.train_run("mlp", "spirals", scheduler="cyclic")
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        runs.train_run("mlp", "spirals", augment="shift,rotate")
    with pytest.raises(ValueError, match="needs images"):
        runs.train_run("mlp", "spirals", augment="shift", progress=False)
    with pytest.raises(ValueError, match="must not choose on the test set"):
        runs.train_run("mlp", "spirals", early_stopping=3, val_fraction=0)
    with pytest.raises(ValueError, match="unknown model 'resnet1000'"):
        runs.train_run("resnet1000", "spirals")
    with pytest.raises(ValueError, match="mixup or cutmix"):
        runs.build_transforms("mixup,cutmix", (1, 8, 8))


def test_build_transforms_order():
    train, test, batch = runs.build_transforms("shift,flip,cutout,mixup", (3, 32, 32), [0.5] * 3, [0.2] * 3, 10)
    names = [type(t).__name__ for t in train.transforms]
    assert names == ["RandomCrop", "RandomHorizontalFlip", "Normalize", "Cutout"]
    assert train.transforms[0].padding == 2 and isinstance(batch, T.MixUp)
    assert [type(t).__name__ for t in test.transforms] == ["Normalize"]
    assert runs.build_transforms("none", (3, 32, 32)) == (None, None, None)


def test_model_kwargs_follow_the_builder():
    assert runs.model_kwargs("mlp", (1, 28, 28), 10) == {"num_classes": 10, "in_features": 784}
    assert runs.model_kwargs("lenet5", (3, 32, 32), 4) == {"num_classes": 4, "in_channels": 3, "image_size": 32}
    assert runs.model_kwargs("resnet18_cifar", (3, 32, 32), 10) == {"num_classes": 10, "in_channels": 3}


def test_evaluate_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        runs.evaluate_checkpoint(tmp_path / "nothing.safetensors")
    pydl.save({"model": {"w": pydl.ones(1)}}, tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="no run config"):
        runs.evaluate_checkpoint(tmp_path / "bare.safetensors")
    pydl.save({"model": {"w": pydl.ones(1)}, "config": {"model": "mlp", "data": "spirals",
                                                         "model_kwargs": {"in_features": 2, "num_classes": 3}}},
              tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="do not fit model 'mlp'"):
        runs.evaluate_checkpoint(tmp_path / "other.safetensors")
