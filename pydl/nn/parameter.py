"""``Parameter``: a tensor a Module registers as one of its learnable weights."""
import numpy as np

from ..tensor import Tensor, _to_array

__all__ = ["Buffer", "Parameter"]


class Parameter(Tensor):
    """A leaf tensor that requires grad by default; assigning one to a Module attribute
    registers it (it then appears in ``parameters()`` and ``state_dict()``).

    >>> p = pydl.nn.Parameter(pydl.zeros(2))
    >>> p
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data
        elif not isinstance(data, np.ndarray) and not hasattr(data, "__cuda_array_interface__"):
            data = _to_array(data)
        self.data = data
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.__array__(), self.requires_grad))


class Buffer(Tensor):
    """Marks a tensor to be registered as a buffer when assigned to a Module attribute."""

    __slots__ = ("persistent",)

    def __init__(self, data=None, *, persistent=True):
        super().__init__(data)
        self.persistent = persistent
