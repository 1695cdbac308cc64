"""Attach the operations to :class:`pydl.Tensor` as methods and operators.

Hot operators (``+``, ``*``, ``@``, ...) are the op functions themselves, so ``a + b``
costs one Python call, not two.
"""
import numpy as np

from .. import random as _random
from .._device import asarray_on
from ..autograd.grad_mode import GradMode
from ..tensor import Tensor
from . import creation as cr
from . import indexing as ix
from . import linalg as la
from . import pointwise as pw
from . import reduction as rd
from . import shape as sh
from . import unary as un

T = Tensor

# operators
T.__add__ = T.__radd__ = pw.add
T.__sub__ = pw.sub
T.__rsub__ = pw.rsub
T.__mul__ = T.__rmul__ = pw.mul
T.__truediv__ = pw.div
T.__rtruediv__ = pw.rdiv
T.__pow__ = pw.pow
T.__rpow__ = pw.rpow
T.__matmul__ = la.matmul
T.__rmatmul__ = la.rmatmul
T.__neg__ = un.neg
T.__pos__ = lambda self: self
T.__abs__ = un.abs
T.__eq__ = pw.eq
T.__ne__ = pw.ne
T.__lt__ = pw.lt
T.__le__ = pw.le
T.__gt__ = pw.gt
T.__ge__ = pw.ge
T.__and__ = T.__rand__ = lambda self, other: pw._no_grad_binary(self, other, np.bitwise_and)
T.__or__ = T.__ror__ = lambda self, other: pw._no_grad_binary(self, other, np.bitwise_or)
T.__xor__ = T.__rxor__ = lambda self, other: pw._no_grad_binary(self, other, np.bitwise_xor)
T.__invert__ = pw.bitwise_not
T.__floordiv__ = pw.floor_divide
T.__rfloordiv__ = lambda self, other: pw._no_grad_binary(pw._make(asarray_on(self.data, other)), self, np.floor_divide)
T.__mod__ = pw.remainder
T.__getitem__ = ix.getitem
T.__setitem__ = ix.setitem


def _add(self, other, *, alpha=1):
    return pw.add(self, other if alpha == 1 else other * alpha)


def _sub(self, other, *, alpha=1):
    return pw.sub(self, other if alpha == 1 else other * alpha)


T.add = _add
T.sub = T.subtract = _sub
T.mul = T.multiply = pw.mul
T.div = T.divide = pw.div
T.true_divide = pw.div
T.pow = pw.pow
T.neg = T.negative = un.neg
T.matmul = T.mm = la.matmul
T.bmm = la.bmm
T.dot = la.dot
T.mv = la.mv
T.outer = la.outer
T.eq = pw.eq
T.ne = pw.ne
T.lt = pw.lt
T.le = pw.le
T.gt = pw.gt
T.ge = pw.ge
T.maximum = pw.maximum
T.minimum = pw.minimum
T.logical_and = pw.logical_and
T.logical_or = pw.logical_or
T.logical_not = pw.logical_not
T.isnan = pw.isnan
T.isinf = pw.isinf
T.isfinite = pw.isfinite
T.allclose = pw.allclose
T.equal = pw.equal
for _name in ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "square", "abs", "tanh", "sigmoid",
              "relu", "sin", "cos", "sign", "floor", "ceil", "round", "trunc", "clamp", "clamp_min", "clamp_max"):
    setattr(T, _name, getattr(un, _name))
T.clip = un.clamp
T.absolute = un.abs

for _name in ("sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var", "std", "logsumexp", "prod",
              "norm", "cumsum", "all", "any", "count_nonzero"):
    setattr(T, _name, getattr(rd, _name))

for _name in ("reshape", "view", "view_as", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "permute",
              "transpose", "t", "expand", "expand_as", "broadcast_to", "contiguous", "is_contiguous", "clone",
              "narrow", "split", "chunk", "unbind", "flip", "repeat"):
    setattr(T, _name, getattr(sh, _name))
T.swapaxes = T.swapdims = sh.transpose
T.T = property(sh.T)
T.mT = property(sh.mT)

T.masked_fill = ix.masked_fill
T.gather = ix.gather
T.index_select = ix.index_select
T.take = ix.take
T.nonzero = ix.nonzero
T.where = lambda self, condition, other: ix.where(condition, self, other)
T.type_as = lambda self, other: self.to(other.dtype)
# new_* keep self's device and dtype (PyTorch's rule), built by the creation functions
T.new_zeros = lambda self, *size, dtype=None: cr.zeros(*size, dtype=dtype or self.dtype, device=self.device)
T.new_ones = lambda self, *size, dtype=None: cr.ones(*size, dtype=dtype or self.dtype, device=self.device)
T.new_full = lambda self, size, fill_value, dtype=None: cr.full(tuple(size), fill_value, dtype=dtype or self.dtype,
                                                               device=self.device)
T.new_tensor = lambda self, data, dtype=None: cr.tensor(data, dtype=dtype or self.dtype, device=self.device)

# --------------------------------------------------------------------------- in place
# Allowed where autograd is not watching: under no_grad, or on a tensor that does not
# require grad. On a leaf that requires grad outside no_grad they raise, like PyTorch.
# ``x += y`` on a non-leaf that is being recorded rebinds x to the out-of-place result.
def _value(other):
    return other.data if isinstance(other, Tensor) else other


def _inplace_op(ufunc, out_of_place):
    def op(self, other):
        if self.requires_grad and GradMode.enabled:
            if self.grad_fn is None:
                raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")
            return out_of_place(self, other)
        data = self.data
        try:
            ufunc(data, _value(other), out=data)
        except TypeError as e:  # e.g. int tensor += float (PyTorch refuses as well)
            raise RuntimeError(f"in-place {ufunc.__name__}: result type can't be cast to the desired output type "
                               f"{data.dtype} ({e})") from None
        except ValueError as e:
            raise RuntimeError(f"in-place {ufunc.__name__} on a tensor of shape {tuple(data.shape)}: {e}") from None
        return self

    return op


T.__iadd__ = _inplace_op(np.add, pw.add)
T.__isub__ = _inplace_op(np.subtract, pw.sub)
T.__imul__ = _inplace_op(np.multiply, pw.mul)
T.__itruediv__ = _inplace_op(np.true_divide, pw.div)


def _method_inplace(name, ufunc):
    def op(self, other, *, alpha=None):
        self._check_inplace(name)
        v = _value(other)
        if alpha is not None:
            v = v * alpha
        ufunc(self.data, v, out=self.data)
        return self

    op.__name__ = name
    return op


T.add_ = _method_inplace("add_", np.add)
T.sub_ = _method_inplace("sub_", np.subtract)
T.mul_ = _method_inplace("mul_", np.multiply)
T.div_ = _method_inplace("div_", np.true_divide)
T.pow_ = _method_inplace("pow_", np.power)
T.maximum_ = _method_inplace("maximum_", np.maximum)
T.minimum_ = _method_inplace("minimum_", np.minimum)


def _unary_inplace(name, fn):
    def op(self):
        self._check_inplace(name)
        fn(self.data, out=self.data)
        return self

    op.__name__ = name
    return op


T.sqrt_ = _unary_inplace("sqrt_", np.sqrt)
T.exp_ = _unary_inplace("exp_", np.exp)
T.log_ = _unary_inplace("log_", np.log)
T.abs_ = _unary_inplace("abs_", np.abs)
T.neg_ = _unary_inplace("neg_", np.negative)
T.tanh_ = _unary_inplace("tanh_", np.tanh)
T.sign_ = _unary_inplace("sign_", np.sign)


def relu_(self):
    self._check_inplace("relu_")
    np.maximum(self.data, 0, out=self.data)
    return self


def sigmoid_(self):
    self._check_inplace("sigmoid_")
    self.data[...] = un.sigmoid(Tensor._make(self.data)).data
    return self


def clamp_(self, min=None, max=None):
    self._check_inplace("clamp_")
    if min is not None:
        np.maximum(self.data, _value(min), out=self.data)
    if max is not None:
        np.minimum(self.data, _value(max), out=self.data)
    return self


def addcmul_(self, tensor1, tensor2, *, value=1):
    """self += value * tensor1 * tensor2."""
    self._check_inplace("addcmul_")
    self.data += value * (_value(tensor1) * _value(tensor2))
    return self


def addcdiv_(self, tensor1, tensor2, *, value=1):
    """self += value * tensor1 / tensor2."""
    self._check_inplace("addcdiv_")
    self.data += value * (_value(tensor1) / _value(tensor2))
    return self


def lerp_(self, end, weight):
    """self += weight * (end - self)."""
    self._check_inplace("lerp_")
    self.data += _value(weight) * (_value(end) - self.data)
    return self


def masked_fill_(self, mask, value):
    self._check_inplace("masked_fill_")
    self.data[_value(mask)] = _value(value)
    return self


def _fill_generator(self, generator):
    """The generator of an in-place fill: the given one, else the global one of self's device
    (CuPy's seeded RandomState for a GPU tensor)."""
    if generator is not None:
        return generator
    return _random.default_generator() if self.data.__class__ is np.ndarray else _random.cuda_generator()


def uniform_(self, a=0.0, b=1.0, *, generator=None):
    """Fill with samples of U(a, b) from the global generator."""
    self._check_inplace("uniform_")
    gen = _fill_generator(self, generator)
    self.data[...] = asarray_on(self.data, gen.uniform(a, b, self.data.shape))
    return self


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with samples of N(mean, std^2) from the global generator."""
    self._check_inplace("normal_")
    gen = _fill_generator(self, generator)
    self.data[...] = asarray_on(self.data, mean + std * gen.standard_normal(self.data.shape))
    return self


def bernoulli_(self, p=0.5, *, generator=None):
    self._check_inplace("bernoulli_")
    gen = _fill_generator(self, generator)
    draws = gen.random(self.data.shape) if hasattr(gen, "random") else gen.random_sample(self.data.shape)
    self.data[...] = asarray_on(self.data, draws < _value(p))
    return self


def set_(self, source):
    self._check_inplace("set_")
    self.data = _value(source)
    return self


for _fn in (relu_, sigmoid_, clamp_, addcmul_, addcdiv_, lerp_, masked_fill_, uniform_, normal_, bernoulli_, set_):
    setattr(T, _fn.__name__, _fn)
T.clamp_min_ = lambda self, min: clamp_(self, min=min)
T.clamp_max_ = lambda self, max: clamp_(self, max=max)
