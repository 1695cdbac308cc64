"""Which input pixels and which feature maps a class score depends on.

All functions take a model mapping (N, C, H, W) images to (N, K) class scores, run it in
eval mode (restoring the mode afterwards) and return NumPy arrays.
"""
import contextlib

import numpy as np

import pydl
from ..nn import ReLU
from ..tensor import Tensor

__all__ = ["activation_maps", "cam", "grad_cam", "guided_backprop", "occlusion", "saliency"]


@contextlib.contextmanager
def eval_mode(model):
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


def _input(x, op):
    if not isinstance(x, Tensor):
        x = pydl.tensor(np.asarray(x, dtype=np.float32))
    if x.ndim != 4:
        raise ValueError(f"{op}: x must have shape (N, C, H, W), got {x.shape}")
    return x.detach().requires_grad_(True)


def _targets(target, n, op):
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=np.int64)
    t = np.broadcast_to(t, (n,)) if t.ndim == 0 else t
    if t.shape != (n,):
        raise ValueError(f"{op}: target must be a class index or one per image ({n}), got shape {t.shape}")
    return t


def _class_score(scores, target, op):
    """sum_n S[n, target[n]]: the gradient of this is each image's class-score gradient."""
    if scores.ndim != 2:
        raise ValueError(f"{op}: the model must return (N, K) class scores, got {scores.shape}")
    t = _targets(target, scores.shape[0], op)
    if t.size and (t.min() < 0 or t.max() >= scores.shape[1]):
        raise ValueError(f"{op}: target out of range for {scores.shape[1]} classes")
    onehot = np.zeros(scores.shape, dtype=scores.data.dtype)
    onehot[np.arange(len(t)), t] = 1
    return (scores * pydl.tensor(onehot)).sum()


def input_gradient(model, x, target, op="input_gradient"):
    """dS_c / dx, (N, C, H, W) NumPy, for the class scores S_c of ``target``."""
    x = _input(x, op)
    with eval_mode(model):
        score = _class_score(model(x), target, op)
        (g,) = pydl.autograd.grad(score, x)
    return np.asarray(g.data)


def saliency(model, x, target):
    """Saliency map (Simonyan et al.): max over channels of |dS_c / dx|: (N, C, H, W) -> (N, H, W).

    The lecture: "compute backprop to the image"; large values mark the pixels whose
    change moves the class score most.
    """
    return np.abs(input_gradient(model, x, target, "saliency")).max(axis=1)


def guided_backprop(model, x, target):
    """Guided backprop: dS_c / dx where every ReLU also zeroes negative upstream gradients
    (the lecture: "clamp gradients"), so only evidence *for* the class flows back:
    (N, C, H, W) -> (N, C, H, W).

    Acts on the model's ``nn.ReLU`` modules (functional relu calls are left as they are).
    """
    handles = []

    def clamp_grad(module, args, out):
        if out.requires_grad:
            out.register_hook(lambda g: g.clamp(min=0))

    for m in model.modules():
        if isinstance(m, ReLU):
            handles.append(m.register_forward_hook(clamp_grad))
    if not handles:
        raise ValueError("guided_backprop: the model has no nn.ReLU module to guide")
    try:
        return input_gradient(model, x, target, "guided_backprop")
    finally:
        for h in handles:
            h.remove()


def activation_maps(model, layer, x):
    """The output of ``layer`` (a sub-module of ``model``) for x, NumPy (N, K, H', W')."""
    store = {}
    h = layer.register_forward_hook(lambda m, a, out: store.__setitem__("a", out))
    try:
        with eval_mode(model), pydl.no_grad():
            model(_input(x, "activation_maps").detach())
    finally:
        h.remove()
    if "a" not in store:
        raise ValueError("activation_maps: layer was not called by the model's forward")
    return np.asarray(store["a"].data)


def occlusion(model, x, target, patch=4, stride=None, fill=0.0):
    """Occlusion sensitivity: slide a ``patch`` x ``patch`` square of ``fill`` over each image
    and record how much the target class's probability drops: (N, C, H, W) -> (N, H', W'),
    one value per patch position (larger = that region mattered more)."""
    stride = stride or patch
    x = _input(x, "occlusion").detach()
    arr = np.asarray(x.data)
    N, C, H, W = arr.shape
    if not 1 <= patch <= min(H, W):
        raise ValueError(f"occlusion: patch must be in [1, {min(H, W)}], got {patch}")
    t = _targets(target, N, "occlusion")
    rows = list(range(0, H - patch + 1, stride))
    cols = list(range(0, W - patch + 1, stride))
    with eval_mode(model), pydl.no_grad():
        def prob(batch):
            p = pydl.nn.functional.softmax(model(pydl.tensor(batch)), dim=1)
            return np.asarray(p.data)[np.arange(N), t]
        base = prob(arr)
        out = np.zeros((N, len(rows), len(cols)))
        for i, r in enumerate(rows):
            for j, c in enumerate(cols):
                occluded = arr.copy()
                occluded[:, :, r:r + patch, c:c + patch] = fill
                out[:, i, j] = base - prob(occluded)
    return out


def cam(features, fc_weight, target):
    """CAM, the cheat sheet's identity for a GAP + linear head:
    S_c = sum_k w_{k,c} F_k = 1/HW sum_{h,w} sum_k w_{k,c} f_{h,w,k}, so the map is

        M^c_{h,w} = sum_k w_{k,c} f_{h,w,k}

    features (N, K, H, W) (the last conv maps), fc_weight (num_classes, K) (PyTorch's Linear
    layout) -> (N, H, W). Its spatial mean is the class score minus the bias.
    """
    f = np.asarray(features.data if isinstance(features, Tensor) else features, dtype=np.float64)
    w = np.asarray(fc_weight.data if isinstance(fc_weight, Tensor) else fc_weight, dtype=np.float64)
    if f.ndim != 4 or w.ndim != 2 or w.shape[1] != f.shape[1]:
        raise ValueError(f"cam: need features (N, K, H, W) and fc_weight (classes, K), got {f.shape}, {w.shape}")
    t = _targets(target, f.shape[0], "cam")
    return np.einsum("nk,nkhw->nhw", w[t], f)


def grad_cam(model, layer, x, target, return_weights=False):
    """Grad-CAM exactly as the cheat sheet's steps, for the activations A (N, K, H, W) of ``layer``:

    1. compute dS_c / dA;
    2. global-average-pool the gradients: alpha_k = 1/HW sum_{h,w} dS_c / dA_{h,w,k};
    3. M^c_{h,w} = ReLU(sum_k alpha_k A_{h,w,k}).

    Returns M (N, H, W), and alpha (N, K) with ``return_weights``.
    """
    store = {}

    def keep(module, args, out):
        store["A"] = out

    h = layer.register_forward_hook(keep)
    try:
        xin = _input(x, "grad_cam")
        with eval_mode(model):
            score = _class_score(model(xin), target, "grad_cam")
            if "A" not in store:
                raise ValueError("grad_cam: layer was not called by the model's forward")
            A = store["A"]
            if A.ndim != 4:
                raise ValueError(f"grad_cam: the layer's output must be (N, K, H, W), got {A.shape}")
            (g,) = pydl.autograd.grad(score, A)
    finally:
        h.remove()
    dA = np.asarray(g.data, dtype=np.float64)
    alpha = dA.mean(axis=(2, 3))                                              # step 2
    M = np.maximum(np.einsum("nk,nkhw->nhw", alpha, np.asarray(A.data, dtype=np.float64)), 0)  # step 3
    return (M, alpha) if return_weights else M
