"""The backward pass: reverse topological order over the recorded nodes, iteratively.

1. From the roots, count for every reachable node how many edges point at it (a
   depth-first walk with an explicit stack: a 100,000-node chain needs no recursion).
2. Start from the roots; run a node's backward once all its consumers have handed it
   their gradient (its count fell to zero), summing gradients that reach the same node
   along several paths (the copy gate).
3. Gradients that reach a leaf are added into ``leaf.grad``; without ``retain_graph`` each
   node's saved arrays are freed right after its backward ran.
"""
import sys

import numpy as np

from ..kernels import cpu as _cpu
from .function import Node, sum_to_shape

__all__ = ["backward", "grad"]

_FREED = ("Trying to backward through the graph a second time (or to use the results of a "
          "backward after they were freed): the saved arrays of {name} were released by the first "
          "backward. Specify retain_graph=True on the first backward() (or autograd.grad()) call "
          "if you need to backward through the graph again.")

_getrefcount = sys.getrefcount
_ndarray = np.ndarray


def _sum_into(prev, g):
    """``prev + g``, the gradients of one node along two paths (the copy gate); written into
    ``prev`` when the engine holds its only references (``grads``, the caller's local and
    this frame's: four with getrefcount's argument) and it owns its memory (not a view), so that no
    array visible elsewhere -- add's gradient handed to both inputs, a saved array -- changes."""
    if (prev.__class__ is _ndarray and g.__class__ is _ndarray and prev.dtype.char in "fd"
            and prev.dtype == g.dtype and prev.shape == g.shape and prev.base is None
            and _getrefcount(prev) == 4 and prev.flags.writeable and prev.flags.c_contiguous):
        _cpu.add_(prev, g)  # both cores, no new array
        return prev
    return prev + g


def _root_grad(t, g, what):
    from ..tensor import Tensor

    if g is None:
        if t.data.size != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar outputs "
                               f"(the output has shape {tuple(t.shape)}); pass gradient=")
        return _ones_like(t.data)
    g = g.data if isinstance(g, Tensor) else g
    if not hasattr(g, "shape"):
        import numpy as np

        g = np.asarray(g, dtype=t.data.dtype)
    if tuple(g.shape) != tuple(t.data.shape):
        raise RuntimeError(f"{what}: gradient has shape {tuple(g.shape)} but the output has shape "
                           f"{tuple(t.data.shape)}")
    return g


def _ones_like(a):
    import numpy as np

    return np.ones_like(a)


def _accumulate_leaf(leaf, g, owned):
    """Add ``g`` into ``leaf.grad`` (the gradient store of a leaf).

    ``owned``: the engine holds the only reference to ``g``, so ``.grad`` may keep it
    without a copy. Shared arrays -- add hands one array to both of its inputs, a user's
    ``gradient=`` argument -- are copied, so that an in-place change to one ``.grad``
    (zero_, clipping) can never show through another array.
    """
    from ..tensor import _make

    hooks = leaf._hooks
    if hooks:
        g = _run_tensor_hooks(hooks, g)
        owned = False
    data = leaf.data
    if g.shape != data.shape:
        g = sum_to_shape(g, data.shape)
        owned = True
    if g.dtype != data.dtype:
        g = g.astype(data.dtype)
        owned = True
    old = leaf.grad
    if old is None:
        if not owned or g.base is not None:
            g = g.copy()
        leaf.grad = _make(g)
    else:
        try:
            old.data += g
        except (ValueError, TypeError):  # read-only or foreign buffer: replace it
            old.data = old.data + g


def _run_tensor_hooks(hooks, g):
    from ..tensor import Tensor

    for hook in hooks:
        r = hook(Tensor(g))
        if r is not None:
            g = r.data if isinstance(r, Tensor) else r
    return g


def _run(roots, retain_graph, capture=None):
    """Run backward from ``roots``: a list of (tensor, grad array).

    ``capture``: {id(tensor): slot} for autograd.grad; gradients for those tensors are
    collected into ``slots`` instead of being accumulated into any ``.grad``.
    """
    # 1. dependencies
    deps = {}
    stack = []
    grads = {}
    leaves_direct = []
    for t, g in roots:
        node = t.grad_fn
        if node is None:
            leaves_direct.append((t, g))
            continue
        if node.next_edges is None:
            raise RuntimeError(_FREED.format(name=node.name()))
        grads[node] = grads[node] + g if node in grads else g
        if node not in deps:
            deps[node] = 0
            stack.append(node)
    while stack:
        node = stack.pop()
        for e in node.next_edges:
            if isinstance(e, Node):
                if e in deps:
                    deps[e] += 1
                else:
                    if e.next_edges is None:
                        raise RuntimeError(_FREED.format(name=e.name()))
                    deps[e] = 1
                    stack.append(e)
    ready = [n for n in grads if deps[n] == 0]

    captured = {} if capture is not None else None
    node_capture = {}
    if capture is not None:
        for key, t in capture.items():
            if t.grad_fn is not None:
                node_capture[t.grad_fn] = key

    for t, g in leaves_direct:
        if capture is not None:
            if id(t) in capture:
                captured[id(t)] = g if id(t) not in captured else captured[id(t)] + g
        else:
            _accumulate_leaf(t, g, False)

    # 2. reverse topological order
    while ready:
        node = ready.pop()
        g = grads.pop(node, None)
        edges = node.next_edges
        if g is not None:
            if node._pre_hooks:
                for hook in node._pre_hooks:
                    r = hook(g)
                    if r is not None:
                        g = r
            if node_capture and node in node_capture:
                key = node_capture[node]
                captured[key] = g
            in_grads = node.backward(g)
        else:
            in_grads = (None,) * len(edges)
        if not retain_graph:
            node.__dict__.clear()
        del g
        in_grads = list(in_grads)
        for i, e in enumerate(edges):
            if e is None:
                continue
            gi = in_grads[i]
            in_grads[i] = None  # from here on, ``gi`` is this frame's reference alone unless shared
            if isinstance(e, Node):
                if gi is not None:
                    prev = grads.get(e)
                    if prev is None:
                        grads[e] = gi
                    else:
                        grads[e] = _sum_into(prev, gi)
                        del prev
                d = deps[e] - 1
                deps[e] = d
                if d == 0:
                    ready.append(e)
            elif gi is not None:
                if capture is None:
                    owned = _getrefcount(gi) == 2  # the local ``gi`` and getrefcount's argument
                    _accumulate_leaf(e, gi, owned)
                elif id(e) in capture:
                    key = id(e)
                    if e._hooks:
                        gi = _run_tensor_hooks(e._hooks, gi)
                    captured[key] = gi if key not in captured else captured[key] + gi
            del gi
    return captured


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Compute the gradient of ``tensors`` with respect to the graph's leaves.

    Gradients are accumulated into ``.grad`` of every leaf that requires grad; the graph
    is freed afterwards unless ``retain_graph=True``.
    """
    from ..tensor import Tensor

    if create_graph:
        raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported by pydl")
    if inputs is not None:
        raise NotImplementedError("backward: inputs= is not supported by pydl; use autograd.grad")
    if isinstance(tensors, Tensor):
        tensors = (tensors,)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = (grad_tensors,) * len(tensors) if grad_tensors is None else (grad_tensors,)
    if len(grad_tensors) != len(tensors):
        raise ValueError(f"backward: {len(tensors)} tensors but {len(grad_tensors)} gradients")
    roots = []
    for t, g in zip(tensors, grad_tensors):
        if not t.requires_grad:
            raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn "
                               "(backward: the output was not computed from a tensor that requires grad, "
                               "or it was computed under no_grad)")
        roots.append((t, _root_grad(t, g, "backward")))
    _run(roots, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned (not accumulated).

    >>> import pydl
    >>> x = pydl.tensor([1.0, 2.0], requires_grad=True)
    >>> pydl.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)
    """
    from ..tensor import Tensor, _make

    if create_graph:
        raise NotImplementedError("autograd.grad: create_graph=True (higher-order gradients) is not supported by pydl")
    single_out = isinstance(outputs, Tensor)
    outputs = (outputs,) if single_out else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,) * len(outputs) if grad_outputs is None else (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"autograd.grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: input {i} does not require grad")
    roots = []
    for t, g in zip(outputs, grad_outputs):
        if not t.requires_grad:
            raise RuntimeError("autograd.grad: an output does not require grad and does not have a grad_fn")
        roots.append((t, _root_grad(t, g, "autograd.grad")))
    capture = {id(t): t for t in inputs}
    captured = _run(roots, bool(retain_graph), capture=capture)
    result = []
    for i, t in enumerate(inputs):
        g = captured.get(id(t))
        if g is None:
            if materialize_grads:
                g = _ones_like(t.data) * 0
            elif not allow_unused:
                raise RuntimeError(f"autograd.grad: input {i} was not used in the graph "
                                   "(set allow_unused=True to get None for it)")
            result.append(None if g is None else _make(g))
            continue
        if g.dtype != t.data.dtype:
            g = g.astype(t.data.dtype)
        result.append(_make(g.copy()))
    return tuple(result)
