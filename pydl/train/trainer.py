"""Trainer: the seeds' training loop (lecture 8), with everything a real run needs.

For each epoch: one pass over the training batches (forward, loss, backward, optional
gradient clipping, optimizer step, scheduler step per batch if asked), then a pass over the
validation set in eval mode, then the scheduler's per-epoch step, the metrics (loss,
accuracy, top-k) into ``history``, a checkpoint, a line in the run log, early stopping.

Checkpoints and resuming: with ``out_dir`` set, the end of every epoch writes
``out_dir/checkpoint.safetensors`` (atomically: a crash leaves the previous one intact):
model, optimizer and scheduler states, the history, early stopping, and the state of every
random generator the run draws from (pydl's global one and the loaders' own). ``fit(...,
resume=True)`` restores all of it and continues with the next epoch, so a run killed in the
middle of an epoch and resumed ends with the same weights, bit for bit, as the same seeded
run never interrupted (on the CPU). The best epoch's model (by ``monitor``) also goes to
``best.safetensors``; the run log is ``log.jsonl``; the learning curves ``curves.png``.

On a GPU: ``Trainer(..., device="cuda")`` moves the model there once and each batch
(after ``batch_transform``, which runs on the host) as it comes; checkpoints hold host
copies and load back onto the model's device. The GPU's own random draws (dropout of GPU
tensors) are not part of the saved random state, so only CPU runs resume bit for bit.

>>> import pydl
>>> from pydl.data import DataLoader, Spirals
>>> _ = pydl.manual_seed(0)
>>> model = pydl.models.get_model("mlp", in_features=2, num_classes=3, hidden=(64,))
>>> trainer = Trainer(model, pydl.optim.Adam(model.parameters(), lr=0.01), progress=False)
>>> history = trainer.fit(DataLoader(Spirals(), 32, shuffle=True), DataLoader(Spirals(False), 100), epochs=30)
>>> history["val_accuracy"][-1] > 0.9
True
"""
import json
import os
import time

import numpy as np

from .. import _device
from .. import random as _pydl_random
from ..autograd import no_grad
from ..nn import functional as F
from ..nn.utils import clip_grad_norm_
from ..serialization import load, save
from ..tensor import Tensor
from ..tensor import device as _device_spec
from .callbacks import EarlyStopping, ProgressBar, RunLog, plot_curves
from .metrics import MeanMetric, correct_topk

__all__ = ["Trainer", "get_rng_state", "set_rng_state"]

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
LOG = "log.jsonl"
CURVES = "curves.png"


def get_rng_state(loaders=()):
    """The states of pydl's global generator and of the loaders' own generators, as JSON text."""
    state = {"pydl": _pydl_random.default_generator().bit_generator.state,
             "loaders": [None if getattr(dl, "generator", None) is None else dl.generator.bit_generator.state
                         for dl in loaders]}
    return json.dumps(state)


def set_rng_state(text, loaders=()):
    """Restore what :func:`get_rng_state` returned."""
    state = json.loads(text)
    _pydl_random.default_generator().bit_generator.state = state["pydl"]
    for dl, s in zip(loaders, state.get("loaders", [])):
        if s is not None and getattr(dl, "generator", None) is not None:
            dl.generator.bit_generator.state = s


def _split_batch(batch):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise ValueError(f"Trainer: each batch must be a pair (input, target), got {type(batch).__name__}"
                     + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))


def _num(x):
    return x.shape[0] if hasattr(x, "shape") and len(x.shape) else 1


class Trainer:
    """Fit a model with an optimizer, validating and checkpointing every epoch.

    model, optimizer: a pydl Module and a pydl optimizer over its parameters.
    loss_fn: ``loss_fn(output, target) -> scalar Tensor`` (default: ``F.cross_entropy``,
        which takes class indices or, after mixup / cutmix, probabilities).
    scheduler: an ``lr_scheduler``, stepped every ``scheduler_interval`` ("epoch" or "batch").
    max_grad_norm: clip the gradients' global L2 norm to this before each step.
    batch_transform: ``(input, target) -> (input, target)`` applied to each training batch
        (``transforms.MixUp``, ``transforms.CutMix``).
    topk: extra top-k accuracies to report (e.g. ``(5,)``); top-1 ("accuracy") is always there.
    out_dir: where checkpoints, the run log and the curves go (None: nothing is written).
    early_stopping: an :class:`EarlyStopping`, or an int patience on ``monitor``.
    monitor: the history key that picks the best epoch ("val_accuracy" by default, or
        "train_loss" when there is no validation set); None: no best epoch (no best.safetensors).
    progress: show a progress bar (tqdm) and a line per epoch.
    plot, val_label: save the learning curves at the end of ``fit``; the name of the "val_*"
        curves in the plot (e.g. "test" when the test split is only watched).
    config: a JSON-able dict stored in checkpoints and the log (how to rebuild the model).
    aux_loss_weight: a model whose training output is a tuple (main scores, auxiliary scores
        ...) -- GoogLeNet's -- trains on loss(main) + aux_loss_weight * sum(loss(aux)) (0.3,
        as Szegedy et al.); metrics use the main output.
    callbacks: objects with any of ``on_epoch_start(trainer, epoch)``,
        ``on_batch_end(trainer, batch_index, logs)``, ``on_epoch_end(trainer, epoch, logs)``.
    device: "cpu", "cuda" or None (leave the model where it is and batches as they come):
        the model is moved there now, each batch's tensors as they are used. RuntimeError
        saying why where CUDA cannot run.
    """

    def __init__(self, model, optimizer, loss_fn=None, *, scheduler=None, scheduler_interval="epoch",
                 max_grad_norm=None, batch_transform=None, topk=(), out_dir=None, early_stopping=None,
                 monitor="val_accuracy", progress=True, plot=True, config=None, callbacks=(), val_label="validation",
                 aux_loss_weight=0.3, device=None):
        if scheduler_interval not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_interval must be 'epoch' or 'batch', got {scheduler_interval!r}")
        self.device = None if device is None else _device_spec(device)
        self.model = model if self.device is None else model.to(self.device)
        self.optimizer = optimizer
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self.scheduler = scheduler
        self.scheduler_interval = scheduler_interval
        self.max_grad_norm = max_grad_norm
        self.batch_transform = batch_transform
        self.topk = tuple(int(k) for k in topk if int(k) > 1)
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
            early_stopping = EarlyStopping(monitor, patience=early_stopping)
        self.early_stopping = early_stopping
        self.monitor = monitor
        self.progress = ProgressBar(progress) if isinstance(progress, bool) else progress
        self.plot = plot
        self.val_label = val_label
        self.aux_loss_weight = float(aux_loss_weight)
        self.config = dict(config or {})
        self.callbacks = list(callbacks)
        self.epoch = 0                 # epochs completed
        self.history = {}
        self.best = {"value": None, "epoch": 0}
        self.notes = []                # things worth telling the user (e.g. no matplotlib)
        if self.out_dir is not None:
            os.makedirs(self.out_dir, exist_ok=True)
        self.log = RunLog(os.path.join(self.out_dir, LOG)) if self.out_dir is not None else None

    # ---------------------------------------------------------------- paths
    def path(self, name):
        if self.out_dir is None:
            raise ValueError("Trainer: out_dir is not set, so there is nowhere to read or write files")
        return os.path.join(self.out_dir, name)

    # ---------------------------------------------------------------- one pass
    def _on_device(self, x):
        """A batch's tensor on the trainer's device (other values, and no device, pass through)."""
        return x.to(self.device) if self.device is not None and isinstance(x, Tensor) else x

    def _callbacks(self, hook, *args):
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    def train_epoch(self, loader):
        """One pass over ``loader``, updating the weights; returns the epoch's training metrics."""
        self.model.train()
        loss_m, correct, count = MeanMetric(), np.zeros(1 + len(self.topk)), 0
        for i, batch in enumerate(loader):
            x, y = _split_batch(batch)
            if self.batch_transform is not None:
                x, y = self.batch_transform(x, y)
            x, y = self._on_device(x), self._on_device(y)
            out = self.model(x)
            if isinstance(out, tuple):  # main output + auxiliary classifiers (GoogLeNet in training)
                out, aux = out[0], [a for a in out[1:] if a is not None]
                loss = self.loss_fn(out, y)
                for a in aux:
                    loss = loss + self.aux_loss_weight * self.loss_fn(a, y)
            else:
                loss = self.loss_fn(out, y)
            self.optimizer.zero_grad()
            loss.backward()
            if self.max_grad_norm is not None:
                clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
            self.optimizer.step()
            if self.scheduler is not None and self.scheduler_interval == "batch":
                self.scheduler.step()
            n = _num(y)
            value = loss.item()
            if not np.isfinite(value):
                raise FloatingPointError(f"Trainer: the training loss became {value} at epoch {self.epoch + 1}, "
                                         f"batch {i + 1}; lower the learning rate or clip gradients (max_grad_norm)")
            loss_m.update(value, n)
            count += n
            if out.ndim == 2:
                correct += correct_topk(out.detach(), y, (1,) + self.topk)
            self.progress.update(1, loss=loss_m.compute(), acc=correct[0] / max(count, 1))
            self._callbacks("on_batch_end", i, {"loss": value})
        logs = {"train_loss": loss_m.compute(), "train_accuracy": float(correct[0] / count) if count else float("nan")}
        for k, c in zip(self.topk, correct[1:]):
            logs[f"train_top{k}"] = float(c / count) if count else float("nan")
        return logs

    def evaluate(self, loader, prefix="val"):
        """Loss, accuracy and top-k over ``loader`` in eval mode, without gradients."""
        was_training = self.model.training
        self.model.eval()
        loss_m, correct, count = MeanMetric(), np.zeros(1 + len(self.topk)), 0
        try:
            with no_grad():
                for batch in loader:
                    x, y = _split_batch(batch)
                    x, y = self._on_device(x), self._on_device(y)
                    out = self.model(x)
                    out = out[0] if isinstance(out, tuple) else out
                    n = _num(y)
                    loss_m.update(self.loss_fn(out, y).item(), n)
                    count += n
                    if out.ndim == 2:
                        correct += correct_topk(out, y, (1,) + self.topk)
        finally:
            self.model.train(was_training)
        logs = {f"{prefix}_loss": loss_m.compute(),
                f"{prefix}_accuracy": float(correct[0] / count) if count else float("nan")}
        for k, c in zip(self.topk, correct[1:]):
            logs[f"{prefix}_top{k}"] = float(c / count) if count else float("nan")
        return logs

    def predict(self, loader):
        """The model's outputs over ``loader`` (batches of inputs, or of (input, target) pairs),
        concatenated: an array (N, K)."""
        was_training = self.model.training
        self.model.eval()
        outs = []
        try:
            with no_grad():
                for batch in loader:
                    x = batch[0] if isinstance(batch, (tuple, list)) else batch
                    outs.append(_device.to_device(self.model(self._on_device(x)).data, "cpu"))
        finally:
            self.model.train(was_training)
        return np.concatenate(outs) if outs else np.empty((0, 0), np.float32)

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self, loaders=()):
        """Everything needed to continue the run exactly: see the module docstring."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "history": self.history,
            "best": self.best,
            "early_stopping": self.early_stopping.state_dict() if self.early_stopping is not None else None,
            "rng": get_rng_state(loaders),
            "config": self.config,
        }

    def save_checkpoint(self, path=None, loaders=()):
        """Write the run's state to ``path`` (default ``out_dir/checkpoint.safetensors``), atomically."""
        path = self.path(CHECKPOINT) if path is None else path
        save(self.state_dict(loaders), path)
        return path

    def load_checkpoint(self, path=None, loaders=()):
        """Restore the run's state from ``path`` (default ``out_dir/checkpoint.safetensors``)."""
        path = self.path(CHECKPOINT) if path is None else os.fspath(path)
        ckpt = load(path)
        missing = [k for k in ("model", "optimizer", "epoch", "rng") if k not in ckpt]
        if missing:
            raise ValueError(f"Trainer: {path} is not a Trainer checkpoint (missing {', '.join(missing)})")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None:
            if ckpt.get("scheduler") is None:
                raise ValueError(f"Trainer: {path} has no scheduler state but this Trainer has a scheduler")
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.early_stopping is not None and ckpt.get("early_stopping") is not None:
            self.early_stopping.load_state_dict(ckpt["early_stopping"])
        self.epoch = int(ckpt["epoch"])
        self.history = {k: list(v) for k, v in (ckpt.get("history") or {}).items()}
        self.best = dict(ckpt.get("best") or {"value": None, "epoch": 0})
        set_rng_state(ckpt["rng"], loaders)
        return ckpt

    # ---------------------------------------------------------------- the loop
    def _record(self, logs):
        for k, v in logs.items():
            self.history.setdefault(k, [])
        length = len(self.history.get("epoch", []))
        for k in self.history:
            column = self.history[k]
            column.extend([None] * (length - len(column)))
            column.append(logs.get(k))

    def _is_best(self, logs):
        if self.monitor is None:
            return False
        value = logs.get(self.monitor)
        if value is None or not np.isfinite(value):
            return False
        best = self.best["value"]
        maximize = "acc" in self.monitor or "top" in self.monitor
        return best is None or (value > best if maximize else value < best)

    def fit(self, train_loader, val_loader=None, epochs=1, resume=False):
        """Train for ``epochs`` epochs in all (a resumed run does only the ones left).

        resume: False, True (continue from ``out_dir/checkpoint.safetensors`` when it exists),
        or the path of a checkpoint. Returns ``history``: lists per metric, one entry per epoch.
        """
        loaders = [train_loader] + ([val_loader] if val_loader is not None else [])
        if val_loader is None and self.monitor is not None and self.monitor.startswith("val_"):
            self.monitor = "train_loss"
            if self.early_stopping is not None and self.early_stopping.monitor.startswith("val_"):
                self.early_stopping = EarlyStopping("train_loss", self.early_stopping.patience,
                                                    self.early_stopping.min_delta)
        if resume:
            path = resume if isinstance(resume, (str, os.PathLike)) else (
                self.path(CHECKPOINT) if self.out_dir is not None else None)
            if path is None:
                raise ValueError("Trainer.fit: resume=True needs out_dir (or pass the checkpoint's path)")
            if os.path.exists(path):
                self.load_checkpoint(path, loaders)
                if self.log is not None:
                    self.log.truncate_after(self.epoch)
                    self.log.write({"event": "resume", "epoch": self.epoch, "checkpoint": os.fspath(path)})
                self.progress.write(f"resumed from {path} after epoch {self.epoch}")
            elif isinstance(resume, (str, os.PathLike)):
                raise FileNotFoundError(f"Trainer.fit: checkpoint not found: {path}")
        if self.log is not None and self.epoch == 0:
            if os.path.exists(self.log.path):  # a fresh run in a used folder starts a fresh log
                os.remove(self.log.path)
            self.log.write({"event": "start", "epochs": epochs, "config": self.config,
                            "seed": _pydl_random.initial_seed()})
        stopped = bool(self.early_stopping is not None and self.early_stopping.stopped)
        while self.epoch < epochs and not stopped:
            epoch = self.epoch + 1
            self._callbacks("on_epoch_start", epoch)
            start = time.perf_counter()
            self.progress.start_epoch(epoch, epochs, len(train_loader) if hasattr(train_loader, "__len__") else None)
            try:
                logs = {"epoch": epoch}
                logs.update(self.train_epoch(train_loader))
                if val_loader is not None:
                    logs.update(self.evaluate(val_loader))
            finally:
                self.progress.close()
            logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
            if self.scheduler is not None and self.scheduler_interval == "epoch":
                self.scheduler.step()
            logs["time"] = time.perf_counter() - start
            self._record(logs)
            self.epoch = epoch
            best = self._is_best(logs)
            if best:
                self.best = {"value": float(logs[self.monitor]), "epoch": epoch}
            if self.early_stopping is not None:
                stopped = self.early_stopping.step(logs.get(self.early_stopping.monitor, float("nan")))
            if self.out_dir is not None:
                if best:
                    save({"model": self.model.state_dict(), "epoch": epoch, "config": self.config,
                          "metrics": {k: v for k, v in logs.items() if isinstance(v, (int, float))}},
                         self.path(BEST))
                self.save_checkpoint(loaders=loaders)
                self.log.write(dict({"event": "epoch"}, **logs))
            self.progress.end_epoch(logs)
            self._callbacks("on_epoch_end", epoch, logs)
        if stopped:
            self.progress.write(f"early stopping after epoch {self.epoch}: {self.early_stopping.monitor} has not "
                                f"improved for {self.early_stopping.patience} epochs (best "
                                f"{self.early_stopping.best:.4f} at epoch {self.early_stopping.best_epoch})")
        if self.out_dir is not None:
            self.log.write({"event": "end", "epoch": self.epoch, "best": self.best, "early_stopped": stopped})
            if self.plot:
                result = plot_curves(self.history, self.path(CURVES), title=self.config.get("title"),
                                     val_label=self.val_label)
                if not str(result).endswith(".png"):
                    self.notes.append(result)
                    self.progress.write(result)
        return self.history

    def load_best(self):
        """Load the weights of the best epoch (``out_dir/best.safetensors``) into the model."""
        self.model.load_state_dict(load(self.path(BEST))["model"])
        return self.model

