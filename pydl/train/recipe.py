"""The seeds' recipe for training a new network (lecture 8), as helpers.

1. Check the initial loss: with small random weights a C-class softmax classifier predicts
   about 1/C for every class, so its cross-entropy starts near log(C) (2.303 for C = 10).
   Far above means the initialisation is off (or a bug in the loss).
2. Overfit a small sample: with no regularisation, a few batches' worth of examples must
   reach 100 % training accuracy; if not, the model or the training loop has a bug.
3. Find a learning rate that makes the loss fall quickly in about 100 iterations: the LR
   range test raises the rate exponentially over ~100 steps and records the loss.
4. Coarse then fine search (:mod:`pydl.train.search`), then train longer.
"""
import math

import numpy as np

from ..autograd import no_grad
from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["check_initial_loss", "lr_range_test", "overfit_small_sample"]


def check_initial_loss(model, inputs, targets, loss_fn=None, rtol=0.25):
    """Loss of the untrained ``model`` on a batch against log(C) (C = the number of classes,
    from the output's width). Returns ``{"loss", "expected", "ok"}``; ok when within ``rtol``.

    >>> import pydl
    >>> _ = pydl.manual_seed(0)
    >>> net = pydl.nn.Linear(20, 10)
    >>> r = check_initial_loss(net, pydl.randn(256, 20) * 0.1, pydl.randint(0, 10, (256,)))
    >>> round(r["expected"], 3), r["ok"]
    (2.303, True)
    """
    loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(inputs)
            loss = float(loss_fn(out, targets).item())
    finally:
        model.train(was_training)
    expected = math.log(out.shape[1])
    return {"loss": loss, "expected": expected, "ok": abs(loss - expected) <= rtol * expected}


def overfit_small_sample(model, optimizer, inputs, targets, steps=200, loss_fn=None):
    """Train ``model`` on one small batch for ``steps`` steps (it is modified: use a fresh one).
    Returns ``{"loss", "accuracy", "losses", "ok"}``; ok when the batch is learnt perfectly.

    >>> import pydl
    >>> _ = pydl.manual_seed(0)
    >>> net = pydl.models.get_model("mlp", in_features=8, num_classes=4, hidden=(32,))
    >>> r = overfit_small_sample(net, pydl.optim.Adam(net.parameters(), lr=0.01),
    ...                          pydl.randn(20, 8), pydl.randint(0, 4, (20,)), steps=150)
    >>> r["accuracy"], r["ok"]
    (1.0, True)
    """
    loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
    model.train()
    losses = []
    for _ in range(int(steps)):
        loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.item()))
    model.eval()
    with no_grad():
        out = model(inputs)
    model.train()
    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    acc = float((np.asarray(out.data).argmax(axis=1) == t).mean())
    return {"loss": losses[-1] if losses else float("nan"), "accuracy": acc, "losses": losses, "ok": acc == 1.0}


def _snapshot(obj):
    """A deep copy of a state dict (arrays copied, so later in-place updates do not reach it)."""
    if isinstance(obj, Tensor):
        return Tensor._make(obj.data.copy())
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_snapshot(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_snapshot(v) for v in obj)
    return obj


def lr_range_test(model, optimizer, loader, start_lr=1e-7, end_lr=10.0, num_iter=100, loss_fn=None,
                  smooth=0.05, diverge=4.0):
    """Raise the learning rate exponentially from ``start_lr`` to ``end_lr`` over ``num_iter``
    training steps, recording the (exponentially smoothed) loss; stop early once the loss
    exceeds ``diverge`` times its best. Model and optimizer are restored afterwards.

    Returns ``{"lrs", "losses", "suggested_lr", "steepest_lr", "min_loss_lr"}``: the rate of the
    lowest loss divided by 10 is the suggestion (the fastest fall is usually just below it).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_range_test: need 0 < start_lr < end_lr, got {start_lr}, {end_lr}")
    if int(num_iter) < 2:
        raise ValueError(f"lr_range_test: num_iter must be at least 2, got {num_iter}")
    loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
    model_state, opt_state = _snapshot(model.state_dict()), _snapshot(optimizer.state_dict())
    was_training = model.training
    factor = (end_lr / start_lr) ** (1.0 / (int(num_iter) - 1))
    lrs, losses = [], []
    avg, best = 0.0, math.inf
    batches = iter(loader)
    model.train()
    try:
        for i in range(int(num_iter)):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            lr = start_lr * factor ** i
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            value = float(loss.item())
            avg = smooth * value + (1 - smooth) * avg
            smoothed = avg / (1 - (1 - smooth) ** (i + 1))
            lrs.append(lr)
            losses.append(smoothed)
            if not math.isfinite(smoothed) or smoothed > diverge * best:
                break
            best = min(best, smoothed)
    finally:
        model.load_state_dict(model_state)
        optimizer.load_state_dict(opt_state)
        model.train(was_training)
    finite = [(lr, l) for lr, l in zip(lrs, losses) if math.isfinite(l)]
    if not finite:
        return {"lrs": lrs, "losses": losses, "suggested_lr": None, "steepest_lr": None, "min_loss_lr": None}
    min_lr = min(finite, key=lambda p: p[1])[0]
    steepest = None
    if len(finite) >= 3:
        log_lr = np.log([p[0] for p in finite])
        slope = np.gradient(np.array([p[1] for p in finite]), log_lr)
        steepest = float(finite[int(np.argmin(slope))][0])
    return {"lrs": lrs, "losses": losses, "suggested_lr": min_lr / 10.0, "steepest_lr": steepest,
            "min_loss_lr": min_lr}
