"""Activation functions of the seeds (lecture 6), each with a closed-form backward.

sigmoid and tanh saturate (their gradient vanishes for large |x|); ReLU passes the
gradient where x > 0 (the max gate with 0); Leaky ReLU / PReLU keep a small slope for
x < 0; ELU and SELU are smooth there; GELU and SiLU (Swish) weight x by a probability.
softmax / log_softmax run on the kernels of the softmax family over the last axis (the
requested ``dim`` is moved there and back).
"""
import math

import numpy as np

from ... import kernels as _kernels_registry
from ..._ops import pointwise as _pw
from ..._ops import unary as _un
from ...autograd.function import Node, sum_to_shape
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make

__all__ = ["elu", "gelu", "hardtanh", "leaky_relu", "log_softmax", "logsigmoid", "maxout", "prelu", "relu",
           "celu", "relu6", "selu", "sigmoid", "silu", "softmax", "softmin", "softplus", "tanh"]

_ndarray = np.ndarray


def _record(input, out, node_cls, *saved):
    if GradMode.enabled and input.requires_grad:
        return _make(out, node_cls((input.grad_fn or input,), *saved))
    return _make(out)


def _check_float(input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.data.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected a floating point tensor, got {input.data.dtype}")


def relu(input, inplace=False):
    """max(0, x). (``inplace`` is accepted; the result is always a new tensor.)"""
    return _un.relu(input)


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return _un.sigmoid(input)


def tanh(input):
    return _un.tanh(input)


class _SlopeBackward(Node):
    """Piecewise-linear activations: the gradient is scaled by the slope on each side."""

    def __init__(self, edges, x, slope):
        self.next_edges = edges
        self.x, self.slope = x, slope

    def backward(self, grad):
        return (np.where(self.x > 0, grad, grad * self.slope),)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x for x > 0, negative_slope * x otherwise (the seeds use 0.1; PyTorch's default is 0.01)."""
    _check_float(input, "leaky_relu")
    x = input.data
    slope = x.dtype.type(negative_slope)  # a NumPy scalar: goes with NumPy and CuPy arrays alike
    out = np.where(x > 0, x, x * slope)
    return _record(input, out, _SlopeBackward, x, slope)


class _PreluBackward(Node):
    def __init__(self, edges, x, w_b, w_shape):
        self.next_edges = edges
        self.x, self.w_b, self.w_shape = x, w_b, w_shape

    def backward(self, grad):
        ex, ew = self.next_edges
        pos = self.x > 0
        gx = np.where(pos, grad, grad * self.w_b) if ex is not None else None
        gw = None
        if ew is not None:
            gw = sum_to_shape(np.where(pos, 0, grad * self.x), self.w_b.shape).reshape(self.w_shape)
        return gx, gw


def prelu(input, weight):
    """Leaky ReLU with a learnt slope: one (weight of shape (1,)) or one per channel
    (weight (C,), channels on dim 1)."""
    _check_float(input, "prelu")
    x, w = input.data, weight.data
    if w.ndim != 1:
        raise RuntimeError(f"prelu: weight must be 1-D, got shape {tuple(w.shape)}")
    if w.size == 1 or x.ndim < 2:
        w_b = w.reshape((1,) * max(x.ndim, 1)) if w.size == 1 else w
        if w.size != 1 and x.shape[-1:] != w.shape:
            raise RuntimeError(f"prelu: {w.size} weights but the input has shape {tuple(x.shape)}")
    else:
        if x.shape[1] != w.size:
            raise RuntimeError(f"prelu: weight has {w.size} parameters but the input has {x.shape[1]} channels "
                               f"(dim 1 of shape {tuple(x.shape)})")
        w_b = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    w_b = w_b.astype(x.dtype, copy=False)
    out = np.where(x > 0, x, x * w_b)
    if GradMode.enabled and (input.requires_grad or weight.requires_grad):
        edges = (input.grad_fn or (input if input.requires_grad else None),
                 weight.grad_fn or (weight if weight.requires_grad else None))
        return _make(out, _PreluBackward(edges, x, w_b, w.shape))
    return _make(out)


class _EluBackward(Node):
    """d/dx: 1 for x > 0, else scale * alpha * e^x = out + scale * alpha."""

    def __init__(self, edges, x, out, scale, alpha):
        self.next_edges = edges
        self.x, self.out, self.scale, self.alpha = x, out, scale, alpha

    def backward(self, grad):
        return (np.where(self.x > 0, grad * self.scale, grad * (self.out + self.scale * self.alpha)),)


def _elu(input, alpha, scale, op):
    _check_float(input, op)
    x = input.data
    neg = np.expm1(np.minimum(x, 0)) * (scale * alpha)
    out = np.where(x > 0, x * scale, neg).astype(x.dtype, copy=False)
    return _record(input, out, _EluBackward, x, out, scale, alpha)


def elu(input, alpha=1.0, inplace=False):
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return _elu(input, alpha, 1.0, "elu")


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """scale * elu(x, alpha) with the self-normalising constants (alpha 1.6733, scale 1.0507)."""
    return _elu(input, _SELU_ALPHA, _SELU_SCALE, "selu")


def celu(input, alpha=1.0, inplace=False):
    """max(0, x) + min(0, alpha (e^(x/alpha) - 1))."""
    return _pw.maximum(input, 0.0) + _pw.minimum(alpha * _un.expm1(input / alpha), 0.0)


_erf_scalar = np.frompyfunc(math.erf, 1, 1)


def _erf_python(x):
    """erf elementwise through math.erf: exact, but a Python call per element."""
    return _erf_scalar(x).astype(x.dtype)


try:  # SciPy's vectorised erf where it is installed (NumPy has none); same values
    from scipy.special import erf as _erf_host
except ImportError:  # pragma: no cover - depends on the environment
    _erf_host = _erf_python


def _erf(x):
    """erf of a NumPy array, or of a CuPy array through cupyx's (CuPy has no erf of its own)."""
    if x.__class__ is np.ndarray:
        return _erf_host(x)
    from cupyx.scipy.special import erf

    return erf(x)

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class _GeluBackward(Node):
    def __init__(self, edges, x, approximate):
        self.next_edges = edges
        self.x, self.approximate = x, approximate

    def backward(self, grad):
        x = self.x
        if self.approximate == "tanh":
            inner = _SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)
            t = np.tanh(inner)
            d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            d = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner
        else:  # d/dx x Phi(x) = Phi(x) + x phi(x)
            cdf = 0.5 * (1 + _erf(x * _INV_SQRT_2))
            d = cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
        return (grad * d.astype(grad.dtype, copy=False),)


def gelu(input, approximate="none"):
    """x Phi(x), Phi the standard normal CDF ('none'), or its tanh approximation
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ('tanh')."""
    _check_float(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = input.data
    if approximate == "tanh":
        out = 0.5 * x * (1 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))
    else:
        out = 0.5 * x * (1 + _erf(x * _INV_SQRT_2))
    return _record(input, out.astype(x.dtype, copy=False), _GeluBackward, x, approximate)


class _SiluBackward(Node):
    """d/dx x s(x) = s (1 + x (1 - s))."""

    def __init__(self, edges, x, s):
        self.next_edges = edges
        self.x, self.s = x, s

    def backward(self, grad):
        s = self.s
        return (grad * (s * (1 + self.x * (1 - s))),)


def silu(input, inplace=False):
    """Swish / SiLU: x sigmoid(x)."""
    _check_float(input, "silu")
    x = input.data
    s = 0.5 * (1 + np.tanh(0.5 * x))
    return _record(input, x * s, _SiluBackward, x, s)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold."""
    _check_float(input, "softplus")
    x = input.data
    bx = beta * x
    out = np.where(bx > threshold, x, (np.logaddexp(0, bx) / beta)).astype(x.dtype, copy=False)
    s = 0.5 * (1 + np.tanh(0.5 * bx))
    return _record(input, out, _SoftplusBackward, bx, threshold, s.astype(x.dtype, copy=False))


class _SoftplusBackward(Node):
    def __init__(self, edges, bx, threshold, s):
        self.next_edges = edges
        self.bx, self.threshold, self.s = bx, threshold, s

    def backward(self, grad):
        return (np.where(self.bx > self.threshold, grad, grad * self.s),)


def logsigmoid(input):
    """log(sigmoid(x)) = -softplus(-x), computed without overflow."""
    return -softplus(-input)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    return _un.clamp(input, min_val, max_val)


def relu6(input, inplace=False):
    return _un.clamp(input, 0.0, 6.0)


# ----------------------------------------------------------------- softmax family
def _softmax_dim(ndim, op):
    # PyTorch's legacy choice when dim is not given
    return 0 if ndim in (0, 1, 3) else 1


_FLOAT_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_backend_cache = {}


def _kernel(name, arr):
    """A softmax-family kernel of the backend owning ``arr``, or None (NumPy fallback)."""
    if arr.dtype not in _FLOAT_KERNEL_DTYPES:
        return None
    backend = "cpu" if arr.__class__ is _ndarray else "cuda"
    mod = _backend_cache.get(backend)
    if mod is None:
        try:
            mod = _kernels_registry.backend(backend)
        except (ImportError, RuntimeError, ValueError):
            return None
        if backend == "cpu":  # CUDA's answer may change once CuPy is there; the CPU one cannot
            _backend_cache[backend] = mod
    return getattr(mod, name) if name in mod.OPS else None


def _np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _np_log_softmax(x):
    s = x - x.max(axis=-1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=-1, keepdims=True))


class _SoftmaxBackward(Node):
    """grad_x = y (grad_y - sum(grad_y y)) on the last axis (the kernel's backward)."""

    def __init__(self, edges, y_last, dim, log):
        self.next_edges = edges
        self.y_last, self.dim, self.log = y_last, dim, log

    def backward(self, grad):
        g = np.moveaxis(grad, self.dim, -1) if self.dim is not None else grad
        y = self.y_last
        if g.dtype != y.dtype:
            g = g.astype(y.dtype)
        k = _kernel("log_softmax_backward" if self.log else "softmax_backward", y)
        if k is not None:
            gx = k(g, y)
        elif self.log:
            gx = g - np.exp(y) * g.sum(axis=-1, keepdims=True)
        else:
            gx = y * (g - (g * y).sum(axis=-1, keepdims=True))
        return (np.moveaxis(gx, -1, self.dim) if self.dim is not None else gx,)


def _softmax_like(input, dim, dtype, log, op):
    if dtype is not None:
        input = input.to(dtype)
    _check_float(input, op)
    x = input.data
    if dim is None:
        dim = _softmax_dim(x.ndim, op)
    if x.ndim == 0:
        return _softmax_like(input.reshape(1), 0, None, log, op).reshape(())
    d = dim % x.ndim if -x.ndim <= dim < x.ndim else None
    if d is None:
        raise IndexError(f"{op}: dimension out of range (expected to be in range of [{-x.ndim}, {x.ndim - 1}], "
                         f"but got {dim})")
    moved = d != x.ndim - 1
    x_last = np.moveaxis(x, d, -1) if moved else x
    k = _kernel("log_softmax_forward" if log else "softmax_forward", x_last)
    if k is not None and x_last.size:
        y_last = k(x_last)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            y_last = (_np_log_softmax if log else _np_softmax)(x_last)
    out = np.moveaxis(y_last, -1, d) if moved else y_last
    if GradMode.enabled and input.requires_grad:
        return _make(out, _SoftmaxBackward((input.grad_fn or input,), y_last, d if moved else None, log))
    return _make(out)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x_c) / sum_k exp(x_k) along ``dim`` (rows of probabilities).

    >>> pydl.nn.functional.softmax(pydl.tensor([[0.0, 0.0]]), dim=1)
    tensor([[0.5000, 0.5000]])
    """
    return _softmax_like(input, dim, dtype, False, "softmax")


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(x)) along ``dim``, computed with the log-sum-exp shift (never -inf
    from underflow)."""
    return _softmax_like(input, dim, dtype, True, "log_softmax")


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    return softmax(-input, dim, dtype=dtype)


def maxout(input, num_pieces, dim=1):
    """The seeds' Maxout over pre-activations: dimension ``dim`` of size out * k holds k
    linear pieces per output unit (consecutive); the result keeps the largest of each
    group, (..., out * k, ...) -> (..., out, ...). The max gate routes the gradient to the
    winning piece."""
    x = input
    d = dim % x.ndim
    n = x.shape[d]
    if n % num_pieces:
        raise ValueError(f"maxout: dimension {d} has size {n}, not a multiple of num_pieces={num_pieces}")
    shape = tuple(x.shape)
    grouped = x.reshape(shape[:d] + (n // num_pieces, num_pieces) + shape[d + 1:])
    return grouped.max(dim=d + 1).values
