"""Training runs put together by name: what ``pydl train``, ``pydl eval`` and ``pydl demo`` do.

A run is a model from :mod:`pydl.models`, a data set from :mod:`pydl.data.datasets`, an
optimizer, a learning-rate schedule and a set of augmentations, all chosen by name, and a
:class:`~pydl.train.Trainer` writing into an output folder. The folder's checkpoint
records the names and arguments (its ``config``), so :func:`evaluate_checkpoint` can rebuild
the model and the test set from the file alone.

Images are normalised with the per-channel mean and standard deviation of the training
split (the seeds' preprocessing); the numbers go into the config too.
"""
import copy
import importlib.util
import os
import time

import numpy as np

from .. import models, optim
from .. import random as _pydl_random
from ..data import DataLoader, Subset, transforms as T
from ..data.datasets import dataset_info, get_dataset
from ..data.preprocessing import channel_stats
from ..nn import functional as F
from ..serialization import load
from .trainer import BEST, CHECKPOINT, CURVES, LOG, Trainer

__all__ = ["AUGMENTATIONS", "OPTIMIZERS", "SCHEDULERS", "build_optimizer", "build_scheduler", "build_transforms",
           "demo", "evaluate_checkpoint", "model_kwargs", "train_run"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "onecycle", "linear")
AUGMENTATIONS = {
    "none": "no augmentation",
    "shift": "random shifts: pad by H/14 pixels (2 for 28x28) and crop back (RandomCrop)",
    "flip": "random horizontal flips (not for digits!)",
    "crop": "random resized crops, 60-100 % of the area (RandomResizedCrop)",
    "jitter": "colour jitter: brightness, contrast, saturation 0.3, hue 0.05",
    "erasing": "random erasing of a rectangle, p = 0.5",
    "cutout": "Cutout of an H/4 square",
    "mixup": "mixup of image pairs and their labels (alpha 0.2)",
    "cutmix": "CutMix of image pairs and their labels (alpha 1.0)",
}


def build_optimizer(name, params, lr, weight_decay=0.0, momentum=0.9):
    """An optimizer by name (``OPTIMIZERS``); SGD uses Nesterov momentum ``momentum``."""
    name = name.lower()
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def build_scheduler(name, optimizer, epochs, steps_per_epoch):
    """(scheduler or None, "epoch" | "batch") by name (``SCHEDULERS``): step (x0.1 at 1/2 and 3/4
    of the run, per epoch), cosine (to 0 over the run, per batch), onecycle (warm-up over 30 %
    then cosine down, per batch, peak = the optimizer's lr), linear (to 0, per batch)."""
    name = (name or "none").lower()
    total = max(1, epochs * steps_per_epoch)
    if name == "none":
        return None, "epoch"
    if name == "step":
        milestones = sorted({max(1, epochs // 2), max(1, (3 * epochs) // 4)})
        return optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1), "epoch"
    if name == "cosine":
        return optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total), "batch"
    if name == "onecycle":
        return optim.lr_scheduler.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=total,
                                             cycle_momentum=False), "batch"
    if name == "linear":
        return optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=total), "batch"
    raise ValueError(f"unknown scheduler {name!r}; known: {', '.join(SCHEDULERS)}")


def _parse_augment(augment):
    if augment is None:
        return []
    names = [a.strip().lower() for a in (augment.split(",") if isinstance(augment, str) else augment)]
    names = [a for a in names if a and a != "none"]
    unknown = [a for a in names if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; known: {', '.join(AUGMENTATIONS)}")
    if "mixup" in names and "cutmix" in names:
        raise ValueError("choose mixup or cutmix, not both")
    return names


def build_transforms(augment, input_shape, mean=None, std=None, num_classes=None):
    """(train transform, test transform, batch transform) for images of ``input_shape`` (C, H, W).

    Order: geometry and colour on [0, 1] pixels, then Normalize(mean, std), then erasing /
    Cutout (they fill with 0, the mean after normalising); mixup / cutmix act on whole batches.
    """
    names = _parse_augment(augment)
    if len(input_shape) != 3:
        if names:
            raise ValueError(f"augmentation {', '.join(names)} needs images, but the samples have shape {input_shape}")
        return None, None, None
    C, H, W = input_shape
    normalize = [T.Normalize(mean, std)] if mean is not None else []
    before, after = [], []
    if "shift" in names:
        before.append(T.RandomCrop((H, W), padding=max(1, round(H / 14))))
    if "crop" in names:
        before.append(T.RandomResizedCrop((H, W), scale=(0.6, 1.0)))
    if "flip" in names:
        before.append(T.RandomHorizontalFlip())
    if "jitter" in names:
        before.append(T.ColorJitter(0.3, 0.3, 0.3, 0.05))
    if "erasing" in names:
        after.append(T.RandomErasing(p=0.5))
    if "cutout" in names:
        after.append(T.Cutout(max(1, H // 4)))
    batch = None
    if "mixup" in names:
        batch = T.MixUp(0.2, num_classes)
    elif "cutmix" in names:
        batch = T.CutMix(1.0, num_classes)
    train = before + normalize + after
    return (T.Compose(train) if train else None), (T.Compose(normalize) if normalize else None), batch


def model_kwargs(name, input_shape, num_classes):
    """The arguments the command line gives model ``name``: those of ``num_classes``,
    ``in_channels``, ``image_size`` (square images) and ``in_features`` that its builder accepts."""
    accepted = models.model_arguments(name)
    kw = {}
    if "num_classes" in accepted:
        kw["num_classes"] = int(num_classes)
    if "in_channels" in accepted and len(input_shape) == 3:
        kw["in_channels"] = int(input_shape[0])
    if "image_size" in accepted and len(input_shape) == 3 and input_shape[1] == input_shape[2]:
        kw["image_size"] = int(input_shape[1])
    if "in_features" in accepted:
        kw["in_features"] = int(np.prod(input_shape))
    return kw


def _datasets(config, with_train=True):
    """(train set or None, validation set or None, test set) as ``config`` describes them."""
    info = dataset_info(config["data"])
    mean, std = config.get("mean"), config.get("std")
    train_tf, test_tf, _ = build_transforms(config.get("augment"), info.input_shape, mean, std, info.num_classes)
    test = get_dataset(info.name, train=False, root=config.get("data_root"), transform=test_tf)
    if not with_train:
        return None, None, test
    full = get_dataset(info.name, train=True, root=config.get("data_root"), transform=train_tf)
    frac = float(config.get("val_fraction") or 0.0)
    if frac <= 0:
        return full, None, test
    n_val = max(1, int(round(frac * len(full))))
    order = np.random.default_rng(config.get("split_seed", 0)).permutation(len(full))
    plain = copy.copy(full)
    if hasattr(plain, "transform"):
        plain.transform = test_tf
    return Subset(full, np.sort(order[n_val:])), Subset(plain, np.sort(order[:n_val])), test


def _stats(data, data_root):
    info = dataset_info(data)
    if len(info.input_shape) != 3:
        return None, None
    ds = get_dataset(info.name, train=True, root=data_root)
    images = ds.arrays()[0] if hasattr(ds, "arrays") else None
    mean, std = channel_stats(images if images is not None else ds)
    return [round(float(m), 6) for m in mean], [round(max(float(s), 1e-6), 6) for s in std]


def train_run(model, data, *, data_root=None, epochs=10, batch_size=64, lr=1e-3, optimizer="adam",
              scheduler="cosine", augment=None, out=None, seed=0, workers=0, val_fraction=0.1, weight_decay=0.0,
              momentum=0.9, early_stopping=None, max_grad_norm=None, label_smoothing=0.0, topk=(5,),
              model_args=None, progress=True, resume=False, title=None, device=None):
    """Train model ``model`` on data set ``data`` (names) and evaluate it on the test split.

    val_fraction: the part of the training split held out for validation (0: none; the test
    split is then evaluated each epoch for the curves, but nothing is chosen on it).
    Returns a dict: test_loss, test_accuracy (of the final weights), history, seconds, out,
    config. ``resume=True`` continues the run saved in ``out``. device: "cpu" / "cuda" (the
    Trainer's: the model and every batch go there), None for the CPU.
    """
    info = dataset_info(data)
    kwargs = model_kwargs(model, info.input_shape, info.num_classes)
    kwargs.update(model_args or {})
    _parse_augment(augment)  # every name is checked before any work
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if (scheduler or "none").lower() not in SCHEDULERS:
        raise ValueError(f"unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULERS)}")
    if early_stopping and not val_fraction:
        raise ValueError("early stopping needs a validation split (val_fraction > 0): it must not choose on the "
                         "test set")
    if out is not None and importlib.util.find_spec("safetensors") is None:
        raise ImportError("checkpoints are safetensors files and the safetensors package is not installed: "
                          "pip install safetensors (or pip install \"pydl[demo]\"), or train without an output folder")
    start = time.perf_counter()
    mean, std = _stats(info.name, data_root)
    config = {"model": model.lower(), "model_kwargs": kwargs, "data": info.name, "data_root": data_root,
              "augment": ",".join(_parse_augment(augment)) or "none", "mean": mean, "std": std,
              "val_fraction": float(val_fraction), "split_seed": 0, "epochs": int(epochs),
              "batch_size": int(batch_size), "lr": float(lr), "optimizer": optimizer.lower(),
              "scheduler": (scheduler or "none").lower(), "weight_decay": float(weight_decay),
              "label_smoothing": float(label_smoothing), "seed": int(seed), "title": title or f"{model} on {data}"}
    train_set, val_set, test_set = _datasets(config)
    _pydl_random.manual_seed(seed)
    net = models.get_model(model, **kwargs)
    opt = build_optimizer(optimizer, net.parameters(), lr, weight_decay, momentum)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, num_workers=workers)
    test_loader = DataLoader(test_set, 256, num_workers=workers)
    val_loader = DataLoader(val_set, 256, num_workers=workers) if val_set is not None else test_loader
    sched, interval = build_scheduler(scheduler, opt, epochs, len(train_loader))
    _, _, batch_tf = build_transforms(augment, info.input_shape, mean, std, info.num_classes)
    loss_fn = (lambda out_, y: F.cross_entropy(out_, y, label_smoothing=label_smoothing)) if label_smoothing \
        else F.cross_entropy
    topk = tuple(k for k in topk if k < info.num_classes)
    trainer = Trainer(net, opt, loss_fn, scheduler=sched, scheduler_interval=interval, max_grad_norm=max_grad_norm,
                      batch_transform=batch_tf, topk=topk, out_dir=out, early_stopping=early_stopping,
                      monitor="val_accuracy" if val_set is not None else None, progress=progress, config=config,
                      val_label="validation" if val_set is not None else "test (watched only)", device=device)
    if val_set is None:
        trainer.progress.write(f"no validation split: the {len(test_set)} test images are evaluated after each "
                               f"epoch for the learning curves ('val_*'); nothing is chosen on them")
    history = trainer.fit(train_loader, val_loader, epochs, resume=resume)
    test = trainer.evaluate(test_loader, prefix="test")
    result = {"config": config, "history": history, "seconds": time.perf_counter() - start, "out": out,
              "epochs_run": trainer.epoch, "notes": trainer.notes}
    result.update(test)
    if out is not None:
        trainer.log.write(dict({"event": "test"}, **test))
    return result


def _resolve_checkpoint(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def evaluate_checkpoint(path, data_root=None, batch_size=256, tta=False, topk=(5,)):
    """Rebuild the model saved by a run (a checkpoint file or a run folder), and evaluate it
    on its data set's test split. ``tta``: average over the image, its shifts by one pixel
    (and its mirror image if the run trained with flips). Returns the metrics and the config."""
    path = _resolve_checkpoint(path)
    ckpt = load(path)
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not config or "model" not in config or "data" not in config:
        raise ValueError(f"{path} has no run config (model and data names): it was not written by pydl train "
                         f"/ pydl demo / train_run, so the model cannot be rebuilt from it")
    if data_root is not None:
        config = dict(config, data_root=data_root)
    net = models.get_model(config["model"], **config.get("model_kwargs", {}))
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the saved weights do not fit model {config['model']!r} as pydl builds it "
                         f"now: {e}") from None
    net.eval()
    _, _, test_set = _datasets(config, with_train=False)
    info = dataset_info(config["data"])
    evaluated = net
    if tta:
        if len(info.input_shape) != 3:
            raise ValueError("test-time augmentation needs images")
        evaluated = T.TestTimeAugmentation(net, T.tta_views(hflip="flip" in (config.get("augment") or ""), shift=1))
    trainer = Trainer(evaluated, None, topk=tuple(k for k in topk if k < info.num_classes), progress=False)
    metrics = trainer.evaluate(DataLoader(test_set, batch_size), prefix="test")
    metrics.update({"checkpoint": path, "epoch": ckpt.get("epoch"), "config": config, "n": len(test_set)})
    return metrics


def demo(out="pydl-demo", epochs=None, seed=0, progress=True, workers=0):
    """The main job: train LeNet-5 (or, where the zoo has no LeNet-5 yet, an MLP) on Digits at
    1x28x28 with random-shift augmentation; returns :func:`train_run`'s result."""
    if "lenet5" in models.list_models():
        model, model_args, default_epochs, lr, opt = "lenet5", {}, 10, 2e-3, "adam"
    else:
        model, model_args, default_epochs, lr, opt = "mlp", {"hidden": [1024], "dropout": 0.3}, 60, 2e-3, "adamw"
    return train_run(model, "digits28", epochs=epochs or default_epochs, batch_size=64, lr=lr, optimizer=opt,
                     scheduler="onecycle", augment="shift", out=out, seed=seed, workers=workers, val_fraction=0.0,
                     weight_decay=1e-4 if opt == "adam" else 1e-2, model_args=model_args, progress=progress,
                     title=f"pydl demo: {model} on Digits-28")


def describe_outputs(out):
    """The files a run writes into ``out``, as (label, path) pairs that exist."""
    items = [("checkpoint", CHECKPOINT), ("best model", BEST), ("run log", LOG), ("learning curves", CURVES)]
    return [(label, os.path.join(out, name)) for label, name in items if os.path.exists(os.path.join(out, name))]
