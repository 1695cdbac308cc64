"""Nodes of the recorded graph, and the PyTorch-style ``Function`` for custom operations.

Every differentiable operation that runs while recording creates one :class:`Node` for its
one output tensor (``out.grad_fn``). A node keeps

- ``next_edges``: one entry per differentiable input, in order: the input's own
  ``grad_fn`` (a Node) when it was computed, the input tensor itself when it is a leaf
  that requires grad (its gradient is accumulated into ``.grad``), or ``None`` (no
  gradient flows there: a constant, an integer index, a tensor that does not require grad);
- whatever its backward needs (arrays, shapes), as ordinary attributes.

``backward(grad)`` takes dL/d(output) as an array of the output's shape and returns a
tuple with dL/d(input) for every edge (``None`` where the edge is ``None``: no work is
spent on gradients nobody asked for). After a backward without ``retain_graph`` the engine
clears the node's attributes, which frees the saved arrays and the edges at once; the
class default ``next_edges = None`` then marks the node as freed.

Writing an op (the pattern every elementary op in :mod:`pydl._ops` follows)::

    class MulBackward(Node):                 # mul gate: swaps the multipliers
        def __init__(self, edges, a, b):
            self.next_edges = edges
            self.a, self.b = a, b
        def backward(self, grad):
            ea, eb = self.next_edges
            return (grad * self.b if ea is not None else None,
                    grad * self.a if eb is not None else None)
"""
import numpy as np

from .grad_mode import GradMode, no_grad

__all__ = ["Function", "FunctionCtx", "Node", "edge_of", "sum_to_shape"]


class Node:
    """One recorded operation: edges to its inputs and a ``backward(grad) -> tuple``."""

    next_edges = None  # a node whose attributes were cleared (freed graph) reads None here
    _pre_hooks = None

    def backward(self, grad):  # pragma: no cover - every op overrides it
        raise NotImplementedError

    def name(self):
        return type(self).__name__

    def register_prehook(self, hook):
        """``hook(grad_array) -> array or None``: runs on the gradient before backward."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(hook)

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"


def edge_of(t):
    """The edge for tensor ``t`` as an input: its grad_fn, itself (a leaf), or None."""
    return t.grad_fn or (t if t.requires_grad else None)


def sum_to_shape(grad, shape):
    """Reduce a broadcast gradient back to ``shape``: sum the leading axes broadcasting
    added and the axes it stretched from 1 (the copy gate: a value used many times adds up
    its gradients)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class FunctionCtx:
    """What ``Function.forward`` receives as ``ctx``: save tensors and values for backward."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors

    def mark_non_differentiable(self, *tensors):
        pass


class _FunctionNode(Node, FunctionCtx):
    """The node recorded by ``Function.apply``; it is also the ``ctx`` the user sees."""

    def __init__(self, fn, needs):
        self._fn = fn
        self.needs_input_grad = needs

    def name(self):
        return f"{self._fn.__name__}Backward"

    def backward(self, grad):
        from ..tensor import Tensor

        with no_grad():
            grads = self._fn.backward(self, Tensor(grad))
        if not isinstance(grads, tuple):
            grads = (grads,)
        out = []
        for pos in self._tensor_positions:
            g = grads[pos] if pos < len(grads) else None
            out.append(None if g is None else (g.data if isinstance(g, Tensor) else
                                               g if hasattr(g, "__cuda_array_interface__") else np.asarray(g)))
        return tuple(out)


class Function:
    """A custom differentiable operation, written like PyTorch's ``torch.autograd.Function``.

    ``forward(ctx, *args)`` runs on Tensors with recording off and returns one Tensor;
    ``backward(ctx, grad_output)`` returns one gradient (Tensor or None) per argument of
    forward. Call it as ``MyFn.apply(*args)``.

    >>> import pydl
    >>> class Square(pydl.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         x, = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> x = pydl.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).backward(pydl.ones(1)); x.grad
    tensor([6.])
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor

        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = GradMode.enabled and any(needs)
        ctx = _FunctionNode(cls, needs)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward must return one Tensor, got {type(out).__name__}")
        if record:
            ctx._tensor_positions = positions
            ctx.next_edges = tuple(edge_of(args[i]) for i in positions)
            out = Tensor._make(out.data, ctx)
        return out
