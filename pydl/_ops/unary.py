"""Elementwise functions of one tensor (exp, log, tanh, relu, clamp, ...), and casting.

Each backward multiplies the upstream gradient by the local derivative, computed from
what the forward saved (the input, or the output when the derivative is cheapest from it:
exp, sqrt, tanh, sigmoid). relu is the max gate with 0: the gradient passes where the
input won. Integer inputs to float functions are promoted to the default float dtype.
"""
import numpy as np

from ..autograd.function import Node
from ..autograd.grad_mode import GradMode
from ..kernels import cpu as _cpu
from ..tensor import Tensor, _Defaults, _make

_ndarray = np.ndarray


# -------------------------------------------------------------------- unary maths
class NegBackward(Node):
    def __init__(self, edges):
        self.next_edges = edges

    def backward(self, grad):
        return (-grad,)


def neg(a):
    out = -a.data
    if GradMode.enabled and a.requires_grad:
        return _make(out, NegBackward((a.grad_fn or a,)))
    return _make(out)


class _SavedUnary(Node):
    """A unary op whose backward needs one saved array (the input or the output)."""

    def __init__(self, edges, saved):
        self.next_edges = edges
        self.saved = saved


class ExpBackward(_SavedUnary):
    def backward(self, grad):  # d exp(x) = exp(x): saved is the output
        return (grad * self.saved,)


class LogBackward(_SavedUnary):
    def backward(self, grad):  # d log(x) = 1 / x
        return (grad / self.saved,)


class Log1pBackward(_SavedUnary):
    def backward(self, grad):
        return (grad / (1 + self.saved),)


class Expm1Backward(_SavedUnary):
    def backward(self, grad):  # saved: output; d expm1 = exp(x) = out + 1
        return (grad * (self.saved + 1),)


class SqrtBackward(_SavedUnary):
    def backward(self, grad):  # d sqrt(x) = 1 / (2 sqrt(x)): saved is the output
        return (grad / (2 * self.saved),)


class RsqrtBackward(_SavedUnary):
    def backward(self, grad):  # d x^-1/2 = -1/2 x^-3/2 = -out^3 / 2
        out = self.saved
        return (grad * (-0.5 * out * out * out),)


class ReciprocalBackward(_SavedUnary):
    def backward(self, grad):  # saved: output 1/x; d = -1/x^2
        return (-grad * self.saved * self.saved,)


class AbsBackward(_SavedUnary):
    def backward(self, grad):  # sign(x), 0 at 0 like PyTorch
        return (grad * np.sign(self.saved),)


class TanhBackward(_SavedUnary):
    def backward(self, grad):  # 1 - tanh^2
        out = self.saved
        return (grad * (1 - out * out),)


class SigmoidBackward(_SavedUnary):
    def backward(self, grad):  # s (1 - s)
        s = self.saved
        return (grad * s * (1 - s),)


class ReluBackward(_SavedUnary):
    """max gate with 0: the gradient passes where the input won (x > 0), else it stops."""

    def backward(self, grad):
        y = self.saved
        if grad.__class__ is _ndarray and y.__class__ is _ndarray and grad.dtype.char in "fd" and grad.dtype == y.dtype:
            return (_cpu.relu_backward(grad, y),)  # one pass, both cores (csrc/cpu/pointwise.cpp)
        return (grad * (y > 0),)


class SinBackward(_SavedUnary):
    def backward(self, grad):
        return (grad * np.cos(self.saved),)


class CosBackward(_SavedUnary):
    def backward(self, grad):
        return (-grad * np.sin(self.saved),)


class ZeroBackward(_SavedUnary):
    """Piecewise-constant ops (sign, floor, round): zero gradient almost everywhere."""

    def backward(self, grad):
        return (np.zeros_like(grad),)


class MaskBackward(_SavedUnary):
    """clamp: the gradient passes where the input was inside [min, max]."""

    def backward(self, grad):
        return (grad * self.saved,)


def _unary(a, out, node_cls, saved):
    if GradMode.enabled and a.requires_grad:
        return _make(out, node_cls((a.grad_fn or a,), saved))
    return _make(out)


def _float_input(a, op):
    if a.data.dtype.kind not in "fc":
        return cast(a, _Defaults.float_dtype)
    return a


def exp(a):
    a = _float_input(a, "exp")
    out = np.exp(a.data)
    return _unary(a, out, ExpBackward, out)


def log(a):
    a = _float_input(a, "log")
    return _unary(a, np.log(a.data), LogBackward, a.data)


def log1p(a):
    a = _float_input(a, "log1p")
    return _unary(a, np.log1p(a.data), Log1pBackward, a.data)


def expm1(a):
    a = _float_input(a, "expm1")
    out = np.expm1(a.data)
    return _unary(a, out, Expm1Backward, out)


def sqrt(a):
    a = _float_input(a, "sqrt")
    out = np.sqrt(a.data)
    return _unary(a, out, SqrtBackward, out)


def rsqrt(a):
    a = _float_input(a, "rsqrt")
    out = 1 / np.sqrt(a.data)
    return _unary(a, out, RsqrtBackward, out)


def reciprocal(a):
    a = _float_input(a, "reciprocal")
    out = 1 / a.data
    return _unary(a, out, ReciprocalBackward, out)


def square(a):
    return a * a  # the mul gate with the same input twice: 2 x g


def abs(a):
    return _unary(a, np.abs(a.data), AbsBackward, a.data)


def tanh(a):
    a = _float_input(a, "tanh")
    out = np.tanh(a.data)
    return _unary(a, out, TanhBackward, out)


def sigmoid(a):
    """1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2: no overflow for large |x|."""
    a = _float_input(a, "sigmoid")
    x = a.data
    out = np.tanh(x * 0.5)
    out += 1
    out *= 0.5
    return _unary(a, out, SigmoidBackward, out)


def relu(a):
    x = a.data
    if x.__class__ is _ndarray and x.dtype.char in "fd":
        out = _cpu.relu_forward(x)  # float32/64 NumPy: one pass on both cores, NaN passes like np.maximum
    else:
        out = np.maximum(x, 0)
    return _unary(a, out, ReluBackward, out)


def sin(a):
    a = _float_input(a, "sin")
    return _unary(a, np.sin(a.data), SinBackward, a.data)


def cos(a):
    a = _float_input(a, "cos")
    return _unary(a, np.cos(a.data), CosBackward, a.data)


def sign(a):
    return _unary(a, np.sign(a.data), ZeroBackward, None)


def floor(a):
    return _unary(a, np.floor(a.data), ZeroBackward, None)


def ceil(a):
    return _unary(a, np.ceil(a.data), ZeroBackward, None)


def round(a, decimals=0):
    return _unary(a, np.round(a.data, decimals), ZeroBackward, None)


def trunc(a):
    return _unary(a, np.trunc(a.data), ZeroBackward, None)


def clamp(a, min=None, max=None):
    """Clip into [min, max]; the gradient passes where min <= x <= max (PyTorch's rule)."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    x = a.data
    lo = min.data if isinstance(min, Tensor) else min
    hi = max.data if isinstance(max, Tensor) else max
    out = x
    if lo is not None:
        out = np.maximum(out, lo)
    if hi is not None:
        out = np.minimum(out, hi)
    if out is x:
        out = x.copy()
    if GradMode.enabled and a.requires_grad:
        mask = np.ones_like(x, dtype=bool) if lo is None else (x >= lo)
        if hi is not None:
            mask &= x <= hi
        if mask.shape != x.shape:
            mask = np.broadcast_to(mask, x.shape)
        return _make(out, MaskBackward((a.grad_fn or a,), mask))
    return _make(out)


def clamp_min(a, min):
    return clamp(a, min=min)


def clamp_max(a, max):
    return clamp(a, max=max)


# ------------------------------------------------------------------------ casting
class CastBackward(Node):
    def __init__(self, edges, dtype):
        self.next_edges = edges
        self.dtype = dtype

    def backward(self, grad):
        return (grad.astype(self.dtype),)


def cast(a, dtype):
    """``a`` converted to ``dtype`` (differentiable between float dtypes)."""
    out = a.data.astype(dtype)
    if GradMode.enabled and a.requires_grad and out.dtype.kind in "fc":
        return _make(out, CastBackward((a.grad_fn or a,), a.data.dtype))
    return _make(out)
