"""Elementwise operations with broadcasting, and their backward -- the seeds' gates.

- add gate: distributes the upstream gradient unchanged to both inputs;
- mul gate: swaps -- each input's gradient is the upstream times the *other* input;
- copy gate: an input used by several ops (or stretched by broadcasting) adds up the
  gradients of its uses (``sum_to_shape`` and the engine's accumulation);
- max gate: routes the upstream gradient to the input that won.

A Python number or a NumPy (or CuPy) array as an operand is a constant: it has no edge, and its
gradient is never computed. Operands on two devices (NumPy and CuPy arrays) make the
array library raise TypeError; it is turned into the RuntimeError naming the op and both
devices (:func:`pydl._device.check_same_device`) without a check on the hot path.
"""
import numpy as np

from .._device import asarray_on, check_same_device
from ..autograd.function import Node, sum_to_shape
from ..autograd.grad_mode import GradMode
from ..tensor import Tensor, _Defaults, _make

_f64 = np.dtype(np.float64)
_SCALARS = (int, float, bool, np.generic)
_ndarray = np.ndarray


def _fix_promotion(out, a_dtype, b_dtype):
    """PyTorch's promotion where NumPy's differs: int op float gives the float's dtype
    (not float64), int / int gives the default float."""
    if out.dtype == _f64 and a_dtype != _f64 and (b_dtype is None or b_dtype != _f64):  # dtype(None) is f64
        if a_dtype is not None and a_dtype.kind == "f":
            return out.astype(a_dtype)
        if b_dtype is not None and b_dtype.kind == "f":
            return out.astype(b_dtype)
        return out.astype(_Defaults.float_dtype)
    return out


def _operand(b):
    """(array or number, edge, requires_grad) of the second operand; None if unsupported."""
    if isinstance(b, Tensor):
        return b.data, b.grad_fn or (b if b.requires_grad else None), b.requires_grad
    if isinstance(b, np.generic):  # a NumPy scalar counts as a Python number (PyTorch's weak scalars)
        return b.item(), None, False
    if isinstance(b, _SCALARS) or b.__class__ is _ndarray:
        return b, None, False
    if hasattr(b, "__cuda_array_interface__"):  # a CuPy array: a constant on the GPU
        return b, None, False
    return None, None, None


def _dtype_of(x):
    return getattr(x, "dtype", None)


def _apply(ufunc, ad, bd):
    """``ufunc(ad, bd)``; operands on two devices raise the RuntimeError naming the op."""
    try:
        return ufunc(ad, bd)
    except TypeError:
        check_same_device(ufunc.__name__, ad, bd)
        raise


# ----------------------------------------------------------------------- add / sub
class AddBackward(Node):
    """add gate: the upstream gradient goes unchanged to both inputs (summed over the
    axes an input was broadcast along)."""

    def __init__(self, edges, a_shape, b_shape):
        self.next_edges = edges
        self.a_shape = a_shape  # None when equal to the output's shape
        self.b_shape = b_shape

    def backward(self, grad):
        ea, eb = self.next_edges
        ga = gb = None
        if ea is not None:
            ga = grad if self.a_shape is None else sum_to_shape(grad, self.a_shape)
        if eb is not None:
            gb = grad if self.b_shape is None else sum_to_shape(grad, self.b_shape)
        return ga, gb


class SubBackward(AddBackward):
    """a - b: distributes like add, with the sign flipped for b."""

    def backward(self, grad):
        ea, eb = self.next_edges
        ga = gb = None
        if ea is not None:
            ga = grad if self.a_shape is None else sum_to_shape(grad, self.a_shape)
        if eb is not None:
            gb = -grad if self.b_shape is None else -sum_to_shape(grad, self.b_shape)
        return ga, gb


def _binary(a, b, ufunc, node_cls):
    """Shared body of add and sub: compute, fix promotion, record."""
    ad = a.data
    bd, eb, brg = _operand(b)
    if brg is None:
        return NotImplemented
    try:
        out = ufunc(ad, bd)
    except TypeError:
        check_same_device(ufunc.__name__, ad, bd)
        raise
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and (a.requires_grad or brg):
        so = out.shape
        return _make(out, node_cls((a.grad_fn or (a if a.requires_grad else None), eb),
                                   None if ad.shape == so else ad.shape,
                                   None if eb is None or bd.shape == so else bd.shape))
    return _make(out)


def add(a, b):
    """``a + b`` with broadcasting (Tensor.__add__)."""
    ad = a.data
    if b.__class__ is Tensor:  # the hot path: two plain tensors
        bd = b.data
        try:
            out = ad + bd
        except TypeError:
            check_same_device("add", ad, bd)
            raise
        if out.dtype is not ad.dtype:
            out = _fix_promotion(out, ad.dtype, bd.dtype)
        if GradMode.enabled and (a.requires_grad or b.requires_grad):
            so = out.shape
            return _make(out, AddBackward((a.grad_fn or (a if a.requires_grad else None),
                                           b.grad_fn or (b if b.requires_grad else None)),
                                          None if ad.shape == so else ad.shape,
                                          None if bd.shape == so else bd.shape))
        return _make(out)
    return _binary(a, b, np.add, AddBackward)


def sub(a, b):
    """``a - b`` with broadcasting (Tensor.__sub__)."""
    return _binary(a, b, np.subtract, SubBackward)


class RsubBackward(Node):
    def __init__(self, edges):
        self.next_edges = edges

    def backward(self, grad):
        return (-grad,)


def rsub(a, b):
    """``b - a`` for a constant b (Tensor.__rsub__)."""
    bd, _, brg = _operand(b)
    if brg is None:
        return NotImplemented
    ad = a.data
    out = bd - ad
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and a.requires_grad:
        if out.shape != ad.shape:
            return neg(a.expand(out.shape)) + bd
        return _make(out, RsubBackward((a.grad_fn or a,)))
    return _make(out)


# ---------------------------------------------------------------------- mul / div
class MulBackward(Node):
    """mul gate: swaps the multipliers -- dL/da = g * b and dL/db = g * a."""

    def __init__(self, edges, a, b, a_shape, b_shape):
        self.next_edges = edges
        self.a, self.b = a, b
        self.a_shape, self.b_shape = a_shape, b_shape

    def backward(self, grad):
        ea, eb = self.next_edges
        ga = gb = None
        if ea is not None:
            ga = grad * self.b
            if self.a_shape is not None:
                ga = sum_to_shape(ga, self.a_shape)
        if eb is not None:
            gb = grad * self.a
            if self.b_shape is not None:
                gb = sum_to_shape(gb, self.b_shape)
        return ga, gb


class DivBackward(MulBackward):
    """a / b: dL/da = g / b, dL/db = -g a / b^2."""

    def backward(self, grad):
        ea, eb = self.next_edges
        ga = gb = None
        b = self.b
        if ea is not None:
            ga = grad / b
            if self.a_shape is not None:
                ga = sum_to_shape(ga, self.a_shape)
        if eb is not None:
            gb = -grad * self.a / (b * b)
            if self.b_shape is not None:
                gb = sum_to_shape(gb, self.b_shape)
        return ga, gb


def _mul_like(a, b, ufunc, node_cls):
    ad = a.data
    if b.__class__ is Tensor:
        bd, eb, brg = b.data, b.grad_fn or (b if b.requires_grad else None), b.requires_grad
    else:
        bd, eb, brg = _operand(b)
        if brg is None:
            return NotImplemented
    try:  # inline, not _apply: mul is on every training step's hot path
        out = ufunc(ad, bd)
    except TypeError:
        check_same_device(ufunc.__name__, ad, bd)
        raise
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and (a.requires_grad or brg):
        so = out.shape
        return _make(out, node_cls((a.grad_fn or (a if a.requires_grad else None), eb), ad, bd,
                                   None if ad.shape == so else ad.shape,
                                   None if eb is None or bd.shape == so else bd.shape))
    return _make(out)


def mul(a, b):
    """``a * b`` with broadcasting (Tensor.__mul__)."""
    return _mul_like(a, b, np.multiply, MulBackward)


def div(a, b, *, rounding_mode=None):
    """``a / b`` with broadcasting (Tensor.__truediv__); int / int gives the default float."""
    if rounding_mode is not None:
        return _no_grad_binary(a, b, np.floor_divide if rounding_mode == "floor" else _trunc_div)
    if a.data.dtype.kind in "iub" and (b.__class__ is not Tensor or b.data.dtype.kind in "iub"):
        a = cast(a, _Defaults.float_dtype)
    return _mul_like(a, b, np.true_divide, DivBackward)


def _trunc_div(x, y):
    return np.trunc(np.true_divide(x, y)).astype(np.result_type(x, y))


class RdivBackward(Node):
    """c / a: dL/da = -g c / a^2 = -g out / a."""

    def __init__(self, edges, a, out):
        self.next_edges = edges
        self.a, self.out = a, out

    def backward(self, grad):
        return (-grad * self.out / self.a,)


def rdiv(a, b):
    """``b / a`` for a constant b (Tensor.__rtruediv__)."""
    bd, _, brg = _operand(b)
    if brg is None:
        return NotImplemented
    if a.data.dtype.kind in "iub":
        a = cast(a, _Defaults.float_dtype)
    ad = a.data
    out = bd / ad
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and a.requires_grad:
        if out.shape != ad.shape:
            return rdiv(a.expand(out.shape), b)
        return _make(out, RdivBackward((a.grad_fn or a,), ad, out))
    return _make(out)


# --------------------------------------------------------------------------- pow
class PowBackward(Node):
    """a ** b: dL/da = g b a^(b-1), dL/db = g out log(a)."""

    def __init__(self, edges, a, b, out, a_shape, b_shape):
        self.next_edges = edges
        self.a, self.b, self.out = a, b, out
        self.a_shape, self.b_shape = a_shape, b_shape

    def backward(self, grad):
        ea, eb = self.next_edges
        ga = gb = None
        a, b = self.a, self.b
        if ea is not None:
            if isinstance(b, (int, float)) and b == 2:
                ga = grad * (2 * a)
            else:
                ga = grad * b * a ** (b - 1)
            if self.a_shape is not None:
                ga = sum_to_shape(ga, self.a_shape)
        if eb is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = grad * np.where(a > 0, self.out * np.log(np.where(a > 0, a, 1)), 0)
            if self.b_shape is not None:
                gb = sum_to_shape(gb, self.b_shape)
        return ga, gb


def pow(a, b):
    """``a ** b`` (Tensor.__pow__); b a Tensor or a number."""
    bd, eb, brg = _operand(b)
    if brg is None:
        return NotImplemented
    ad = a.data
    if ad.dtype.kind in "iub" and isinstance(bd, (int, np.integer)) and bd < 0:
        raise RuntimeError("pow: integers to negative integer powers are not allowed")
    out = _apply(np.power, ad, bd)
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and (a.requires_grad or brg):
        so = out.shape
        return _make(out, PowBackward((a.grad_fn or (a if a.requires_grad else None), eb), ad, bd, out,
                                      None if ad.shape == so else ad.shape,
                                      None if eb is None or bd.shape == so else bd.shape))
    return _make(out)


class RpowBackward(Node):
    """c ** a: dL/da = g out log(c)."""

    def __init__(self, edges, log_c, out):
        self.next_edges = edges
        self.log_c, self.out = log_c, out

    def backward(self, grad):
        return (grad * self.out * self.log_c,)


def rpow(a, b):
    """``b ** a`` for a constant b (Tensor.__rpow__)."""
    bd, _, brg = _operand(b)
    if brg is None:
        return NotImplemented
    ad = a.data
    if ad.dtype.kind in "iub" and isinstance(bd, float):
        a = cast(a, _Defaults.float_dtype)
        ad = a.data
    out = np.power(bd, ad)
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and a.requires_grad:
        if out.shape != ad.shape:
            return rpow(a.expand(out.shape), b)
        return _make(out, RpowBackward((a.grad_fn or a,), np.log(bd), out))
    return _make(out)


# -------------------------------------------------------------- maximum / minimum
class MaximumBackward(Node):
    """max gate: the gradient goes to the larger input (split in half on a tie, as
    PyTorch does for elementwise maximum/minimum)."""

    def __init__(self, edges, a, b, a_shape, b_shape, sign):
        self.next_edges = edges
        self.a, self.b, self.sign = a, b, sign
        self.a_shape, self.b_shape = a_shape, b_shape

    def backward(self, grad):
        ea, eb = self.next_edges
        a, b = self.a, self.b
        wins = (a > b) if self.sign > 0 else (a < b)
        tie = a == b
        ga = gb = None
        if ea is not None:
            ga = grad * (wins + 0.5 * tie).astype(grad.dtype)
            if self.a_shape is not None:
                ga = sum_to_shape(ga, self.a_shape)
        if eb is not None:
            gb = grad * ((~wins & ~tie) + 0.5 * tie).astype(grad.dtype)
            if self.b_shape is not None:
                gb = sum_to_shape(gb, self.b_shape)
        return ga, gb


def _extreme(a, b, ufunc, sign):
    if not isinstance(a, Tensor):
        a = _make(asarray_on(b.data, a) if isinstance(b, Tensor) else np.asarray(a))
    bd, eb, brg = _operand(b)
    if brg is None:
        raise TypeError(f"maximum/minimum: other must be a Tensor or a number, got {type(b).__name__}")
    ad = a.data
    out = _apply(ufunc, ad, bd)
    if out.dtype is not ad.dtype:
        out = _fix_promotion(out, ad.dtype, _dtype_of(bd))
    if GradMode.enabled and (a.requires_grad or brg):
        so = out.shape
        return _make(out, MaximumBackward((a.grad_fn or (a if a.requires_grad else None), eb), ad, bd,
                                          None if ad.shape == so else ad.shape,
                                          None if eb is None or np.shape(bd) == so else np.shape(bd), sign))
    return _make(out)


def maximum(input, other):
    """Elementwise max of two tensors (the max gate)."""
    return _extreme(input, other, np.maximum, +1)


def minimum(input, other):
    """Elementwise min of two tensors."""
    return _extreme(input, other, np.minimum, -1)


# ------------------------------------------------------------------ comparisons
def _no_grad_binary(a, b, ufunc):
    bd, _, brg = _operand(b)
    if brg is None:
        return NotImplemented
    return _make(_apply(ufunc, a.data, bd))


def eq(a, b):
    return _no_grad_binary(a, b, np.equal)


def ne(a, b):
    return _no_grad_binary(a, b, np.not_equal)


def lt(a, b):
    return _no_grad_binary(a, b, np.less)


def le(a, b):
    return _no_grad_binary(a, b, np.less_equal)


def gt(a, b):
    return _no_grad_binary(a, b, np.greater)


def ge(a, b):
    return _no_grad_binary(a, b, np.greater_equal)


def logical_and(a, b):
    return _no_grad_binary(a, b, np.logical_and)


def logical_or(a, b):
    return _no_grad_binary(a, b, np.logical_or)


def logical_xor(a, b):
    return _no_grad_binary(a, b, np.logical_xor)


def logical_not(a):
    return _make(np.logical_not(a.data))


def bitwise_not(a):
    return _make(~a.data)


def floor_divide(a, b):
    return _no_grad_binary(a, b, np.floor_divide)


def remainder(a, b):
    return _no_grad_binary(a, b, np.remainder)


def isnan(a):
    return _make(np.isnan(a.data))


def isinf(a):
    return _make(np.isinf(a.data))


def isfinite(a):
    return _make(np.isfinite(a.data))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(np.allclose(a.data, b.data if isinstance(b, Tensor) else b, rtol=rtol, atol=atol,
                            equal_nan=equal_nan))


def equal(a, b):
    return a.shape == b.shape and bool(np.array_equal(a.data, b.data))


from .unary import cast, neg  # noqa: E402  (used above for promotion and rsub)
