"""Trainer: fitting, metrics, schedules, clipping, early stopping, checkpoints and exact resume
(after an exception mid-epoch, and after the process is killed mid-epoch), the run log and
the learning curves."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pydl
from pydl.data import DataLoader, Shapes, Spirals, TensorDataset, transforms as T
from pydl.models import get_model
from pydl.train import EarlyStopping, RunLog, Trainer, plot_curves
from pydl.train.callbacks import ProgressBar


def spirals_run(out_dir=None, epochs=30, lr=0.01, **kw):
    pydl.manual_seed(0)
    model = get_model("mlp", in_features=2, num_classes=3, hidden=(64,))
    trainer = Trainer(model, pydl.optim.Adam(model.parameters(), lr=lr), out_dir=out_dir, progress=False, **kw)
    train = DataLoader(Spirals(), 32, shuffle=True)
    val = DataLoader(Spirals(train=False), 100)
    return trainer, train, val


def test_fit_learns_the_spirals_and_records_history():
    trainer, train, val = spirals_run(topk=(2,))
    history = trainer.fit(train, val, epochs=30)
    assert history["epoch"] == list(range(1, 31))
    for key in ("train_loss", "train_accuracy", "train_top2", "val_loss", "val_accuracy", "val_top2", "lr", "time"):
        assert len(history[key]) == 30, key
    assert history["val_accuracy"][-1] > 0.9 and history["train_loss"][-1] < history["train_loss"][0]
    assert all(a <= b + 1e-12 for a, b in zip(history["val_accuracy"], history["val_top2"]))
    m = trainer.evaluate(val)
    assert m["val_accuracy"] == history["val_accuracy"][-1]
    assert trainer.predict(val).shape == (300, 3)
    assert trainer.best["epoch"] >= 1 and trainer.epoch == 30


def test_fit_continues_where_it_stopped():
    trainer, train, val = spirals_run()
    trainer.fit(train, val, epochs=2)
    trainer.fit(train, val, epochs=5)
    assert trainer.history["epoch"] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("interval, steps", [("batch", 4 * 10), ("epoch", 4)])
def test_scheduler_step_per_batch_or_epoch(interval, steps):
    trainer, train, val = spirals_run()
    sched = pydl.optim.lr_scheduler.StepLR(trainer.optimizer, step_size=1000)
    trainer.scheduler, trainer.scheduler_interval = sched, interval
    trainer.fit(train, None, epochs=4)
    assert sched.last_epoch == steps


def test_gradient_clipping_bounds_the_norm():
    norms = []

    class Watch:
        def on_batch_end(self, trainer, i, logs):
            sq = sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in trainer.model.parameters())
            norms.append(sq ** 0.5)

    trainer, train, val = spirals_run(lr=0.5, max_grad_norm=0.05, callbacks=[Watch()])
    trainer.fit(train, None, epochs=1)
    assert norms and max(norms) <= 0.05 * (1 + 1e-4)


def test_early_stopping_and_monitor_without_validation():
    trainer, train, _ = spirals_run(lr=1e-12, early_stopping=EarlyStopping("train_loss", patience=2, min_delta=1.0))
    history = trainer.fit(train, None, epochs=50)
    assert len(history["epoch"]) == 3 and trainer.early_stopping.stopped
    assert trainer.monitor == "train_loss"
    trainer, train, val = spirals_run(early_stopping=3)
    assert trainer.early_stopping.monitor == "val_accuracy" and trainer.early_stopping.mode == "max"


def test_non_finite_loss_is_reported():
    trainer, train, _ = spirals_run(loss_fn=lambda out, y: (out * float("nan")).sum())
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        trainer.fit(train, None, epochs=1)


def test_batches_must_be_pairs():
    trainer, _, _ = spirals_run()
    with pytest.raises(ValueError, match="pair"):
        trainer.fit([(pydl.zeros(2, 2),)], None, epochs=1)


def test_mixup_batch_transform_trains_on_soft_targets():
    trainer, train, val = spirals_run(batch_transform=T.MixUp(0.2, num_classes=3))
    history = trainer.fit(train, val, epochs=15)
    assert history["val_accuracy"][-1] > 0.7


def test_auxiliary_outputs_add_to_the_loss():
    class TwoHeads(pydl.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = pydl.nn.Linear(2, 16)
            self.main = pydl.nn.Linear(16, 3)
            self.aux = pydl.nn.Linear(16, 3)

        def forward(self, x):
            h = self.body(x).relu()
            return (self.main(h), self.aux(h)) if self.training else self.main(h)

    pydl.manual_seed(0)
    net = TwoHeads()
    trainer = Trainer(net, pydl.optim.Adam(net.parameters(), lr=0.01), progress=False, aux_loss_weight=0.5)
    trainer.fit(DataLoader(Spirals(), 32, shuffle=True), DataLoader(Spirals(train=False), 100), epochs=2)
    assert net.aux.weight.grad is not None and trainer.history["val_accuracy"][-1] > 0.3


def test_no_out_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    trainer, train, val = spirals_run()
    trainer.fit(train, val, epochs=1)
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="out_dir is not set"):
        trainer.save_checkpoint()


def test_outputs_best_model_and_log(tmp_path):
    trainer, train, val = spirals_run(out_dir=tmp_path, config={"model": "mlp"})
    trainer.fit(train, val, epochs=4)
    assert {"checkpoint.safetensors", "best.safetensors", "log.jsonl"} <= set(os.listdir(tmp_path))
    records = RunLog(tmp_path / "log.jsonl").read()
    assert [r["event"] for r in records] == ["start", "epoch", "epoch", "epoch", "epoch", "end"]
    assert records[0]["config"] == {"model": "mlp"} and records[2]["epoch"] == 2
    best = pydl.load(tmp_path / "best.safetensors")
    assert best["epoch"] == trainer.best["epoch"] and best["config"] == {"model": "mlp"}
    trainer.load_best()
    assert trainer.evaluate(val)["val_accuracy"] == pytest.approx(trainer.best["value"])
    ckpt = pydl.load(tmp_path / "checkpoint.safetensors")
    assert ckpt["epoch"] == 4 and ckpt["history"]["epoch"] == [1, 2, 3, 4]


def test_learning_curves_png(tmp_path):
    pytest.importorskip("matplotlib")
    trainer, train, val = spirals_run(out_dir=tmp_path)
    trainer.fit(train, val, epochs=2)
    with open(tmp_path / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_learning_curves_without_matplotlib_leave_a_note(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    note = plot_curves({"epoch": [1], "train_loss": [1.0]}, tmp_path / "c.png")
    assert "matplotlib is not installed" in note and not (tmp_path / "c.png").exists()
    trainer, train, val = spirals_run(out_dir=tmp_path)
    trainer.fit(train, val, epochs=1)
    assert any("matplotlib" in n for n in trainer.notes)


def test_progress_without_tqdm_prints_one_line_per_epoch(capsys):
    trainer, train, val = spirals_run()
    trainer.progress = ProgressBar(True)
    trainer.progress.has_tqdm = False
    trainer.fit(train, val, epochs=2)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[1].startswith("epoch   2") and "val_accuracy" in out[1]


# ------------------------------------------------------------------ exact resume
def _augmented_run(out_dir, callbacks=(), init_seed=0):
    """A run that draws from every random source: init, shuffling, dropout, augmentation."""
    pydl.manual_seed(init_seed)
    model = get_model("mlp", in_features=144, num_classes=4, hidden=(32,), dropout=0.2)
    opt = pydl.optim.Adam(model.parameters(), lr=3e-3)
    sched = pydl.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=4 * 4)
    ds = Shapes(n_samples=120, size=12, transform=T.Compose([T.RandomCrop(12, padding=1), T.RandomErasing(p=0.3)]))
    train = DataLoader(ds, 32, shuffle=True)
    val = DataLoader(Shapes(train=False, n_samples=40, size=12), 64)
    trainer = Trainer(model, opt, scheduler=sched, scheduler_interval="batch", out_dir=out_dir, progress=False,
                      callbacks=callbacks, plot=False)
    return trainer, train, val


class _Crash(Exception):
    pass


class _CrashAt:
    def __init__(self, epoch, batch):
        self.epoch, self.batch, self.current = epoch, batch, 0

    def on_epoch_start(self, trainer, epoch):
        self.current = epoch

    def on_batch_end(self, trainer, i, logs):
        if self.current == self.epoch and i == self.batch:
            raise _Crash(f"crash in epoch {self.epoch}")


def _weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_resume_after_a_crash_mid_epoch_gives_the_same_run(tmp_path):
    ref, train, val = _augmented_run(tmp_path / "ref")
    ref.fit(train, val, epochs=4)

    crashing, train, val = _augmented_run(tmp_path / "run", callbacks=[_CrashAt(3, 1)])
    with pytest.raises(_Crash):
        crashing.fit(train, val, epochs=4)
    assert pydl.load(tmp_path / "run" / "checkpoint.safetensors")["epoch"] == 2

    # a new process would build everything anew, with whatever seed: the checkpoint decides
    resumed, train, val = _augmented_run(tmp_path / "run", init_seed=99)
    pydl.manual_seed(12345)
    resumed.fit(train, val, epochs=4, resume=True)
    for k, v in _weights(ref.model).items():
        np.testing.assert_array_equal(_weights(resumed.model)[k], v, err_msg=k)
    assert resumed.history == ref.history | {"time": resumed.history["time"]}
    events = [(r["event"], r.get("epoch")) for r in RunLog(tmp_path / "run" / "log.jsonl").read()]
    assert [e for e in events if e[0] == "epoch"] == [("epoch", i) for i in (1, 2, 3, 4)]
    assert ("resume", 2) in events


def test_resume_from_a_missing_checkpoint():
    trainer, train, val = spirals_run()
    with pytest.raises(ValueError, match="needs out_dir"):
        trainer.fit(train, val, epochs=1, resume=True)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        trainer.fit(train, val, epochs=1, resume="/nonexistent/ckpt.safetensors")


def test_resume_true_without_a_checkpoint_starts_fresh(tmp_path):
    trainer, train, val = spirals_run(out_dir=tmp_path)
    trainer.fit(train, val, epochs=1, resume=True)
    assert trainer.epoch == 1


def test_load_checkpoint_rejects_other_files(tmp_path):
    pydl.save({"weights": pydl.ones(2)}, tmp_path / "other.safetensors")
    trainer, _, _ = spirals_run()
    with pytest.raises(ValueError, match="not a Trainer checkpoint"):
        trainer.load_checkpoint(tmp_path / "other.safetensors")


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from train.test_trainer import _augmented_run

    out, mode = sys.argv[1], sys.argv[2]

    class KillAt:
        current = 0
        def on_epoch_start(self, trainer, epoch):
            self.current = epoch
        def on_batch_end(self, trainer, i, logs):
            if mode == "kill" and self.current == 3 and i == 2:
                os.kill(os.getpid(), signal.SIGKILL)      # no cleanup, no finally blocks

    trainer, train, val = _augmented_run(out, callbacks=[KillAt()])
    trainer.fit(train, val, epochs=4, resume=(mode == "resume"))
    np.savez(os.path.join(out, "final.npz"), **{{k: v.numpy() for k, v in trainer.model.state_dict().items()}})
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_resume_after_the_process_is_killed_mid_epoch(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

    def run(out, mode):
        return subprocess.run([sys.executable, str(script), str(out), mode], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)

    ref = run(tmp_path / "ref", "plain")
    assert ref.returncode == 0, ref.stderr
    killed = run(tmp_path / "run", "kill")
    assert killed.returncode == -signal.SIGKILL
    assert pydl.load(tmp_path / "run" / "checkpoint.safetensors")["epoch"] == 2
    resumed = run(tmp_path / "run", "resume")
    assert resumed.returncode == 0, resumed.stderr
    a, b = np.load(tmp_path / "ref" / "final.npz"), np.load(tmp_path / "run" / "final.npz")
    assert set(a.files) == set(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    log = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert [r["epoch"] for r in log if r["event"] == "epoch"] == [1, 2, 3, 4]


def test_callbacks_module_docstrings():
    import doctest
    import importlib

    for name in ["pydl.train.trainer", "pydl.train.callbacks", "pydl.train.metrics", "pydl.train.search",
                 "pydl.train.recipe", "pydl.train.ensemble"]:
        result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                                 optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, name


def test_tensor_dataset_batches_work_too():
    pydl.manual_seed(0)
    x = pydl.randn(64, 5)
    y = (x.sum(dim=1) > 0).long()
    model = pydl.nn.Linear(5, 2)
    trainer = Trainer(model, pydl.optim.SGD(model.parameters(), lr=0.5), progress=False)
    history = trainer.fit(DataLoader(TensorDataset(x, y), 16, shuffle=True), None, epochs=20)
    assert history["train_accuracy"][-1] > 0.9
