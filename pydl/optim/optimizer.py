"""The optimizer base class: parameter groups, per-parameter state, state dicts.

PyTorch's ``torch.optim.Optimizer`` contract, kept whole so a PyTorch user guesses right:

* ``param_groups``: a list of dicts, each with its ``"params"`` (a list of tensors) and its
  own hyper-parameters (``lr``, ``weight_decay``, ...); options a group does not name are
  taken from the optimizer's ``defaults``.
* ``state``: per-parameter buffers (momentum, moments, step counts), created lazily on the
  first ``step()``. ``optimizer.state[p]`` is a dict of plain arrays (NumPy, CuPy on a GPU)
  and step counts; ``state_dict()`` hands the arrays out wrapped as pydl Tensors.
* ``state_dict()`` -> ``{"state": {index: {...}}, "param_groups": [{..., "params":
  [indices]}]}`` where parameters are replaced by their position across all groups (0, 1,
  ... in group order), so the dict can be saved and loaded into a fresh optimizer built over
  the same model.

The update itself is vectorised per parameter with NumPy in-place operations on the
parameter's array (``p.data``) and gradient array (``p.grad.data``): no graph is recorded
and no Python loop runs over elements.
"""
import copy
import itertools
from collections.abc import MutableMapping

import numpy as np

from .. import _device

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a hyper-parameter without a default (PyTorch's ``required``)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _tensor_class():
    from ..tensor import Tensor

    return Tensor


def _is_tensor(x):
    try:
        return isinstance(x, _tensor_class())
    except ImportError:  # pragma: no cover - only before pydl.tensor exists
        return hasattr(x, "data") and hasattr(x, "requires_grad")


def _typename(x):
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _as_array(x):
    """The array behind a Tensor (or the array itself)."""
    return x.data if _is_tensor(x) else x


def _wrap(array):
    """A Tensor sharing ``array`` (state buffers are Tensors, as in PyTorch)."""
    from ..tensor import Tensor

    return Tensor(array)


class _ParamState(MutableMapping):
    """``optimizer.state``: a dict keyed by parameter identity (like PyTorch's, which hashes
    tensors by ``id``), with ``defaultdict(dict)`` behaviour on a missing parameter."""

    def __init__(self):
        self._items = {}  # id(param) -> (param, state dict)

    def __getitem__(self, param):
        entry = self._items.get(id(param))
        if entry is None:
            entry = self._items[id(param)] = (param, {})
        return entry[1]

    def __setitem__(self, param, value):
        self._items[id(param)] = (param, value)

    def __delitem__(self, param):
        del self._items[id(param)]

    def __contains__(self, param):
        return id(param) in self._items

    def __iter__(self):
        return (param for param, _ in self._items.values())

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"{{{', '.join(f'<param {tuple(p.shape)}>: {s!r}' for p, s in self._items.values())}}}"


class Optimizer:
    """Base class of every optimizer.

    Args:
        params: an iterable of Tensors, or of dicts (parameter groups) each holding
            ``"params"`` and any per-group options.
        defaults (dict): the default value of each option (``required`` for those without one).

    Subclasses implement ``step()`` and may override ``_check_group(group)`` (validation of
    one group's options, run for every group added) and ``_init_state(p, state, group)``.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = _ParamState()
        self.param_groups = []
        if _is_tensor(params):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {_typename(params)}"
            )
        if isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------
    def _check_group(self, group):
        """Validate one group's hyper-parameters (subclasses raise PyTorch's messages)."""

    def add_param_group(self, param_group):
        """Add a group of parameters with its own options (fine-tuning: a new head with a
        larger lr, layers unfrozen later). Missing options come from ``defaults``.

        Raises ValueError when a parameter appears twice, in this group or in another one.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        params = param_group["params"]
        if _is_tensor(params):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        for p in params:
            if not _is_tensor(p):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {_typename(p)}")
            if not getattr(p, "is_leaf", True):
                raise ValueError("can't optimize a non-leaf Tensor")

        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            group.setdefault(name, default)
        self._check_group(group)

        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    # -- gradients ------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter: drop them (``None``, the default: the
        next backward allocates fresh ones) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure=None):
        """Update every parameter that has a gradient; returns ``closure()`` when given."""
        raise NotImplementedError

    def _call_closure(self, closure):
        if closure is None:
            return None
        from ..autograd.grad_mode import enable_grad

        with enable_grad():
            return closure()

    def _params_with_grad(self, group):
        """``(param, param array, grad array)`` of each parameter of ``group`` with a gradient.

        A 0-d parameter comes as a 1-element view: NumPy turns 0-d results into scalars,
        which in-place updates cannot reach."""
        out = []
        for p in group["params"]:
            g = p.grad
            if g is None:
                continue
            out.append((p, _at_least_1d(p.data), _at_least_1d(_as_array(g))))
        return out

    # -- state dicts ----------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state as PyTorch lays it out.

        ``{"state": {index: {"step": int, "<buffer>": Tensor, ...}}, "param_groups":
        [{option: value, ..., "params": [index, ...]}]}``; indices number the parameters of all
        groups in order. Buffers are the live Tensors (as in PyTorch): deep-copy the dict to
        keep a snapshot in memory, or ``pydl.save`` it.
        """
        index_of = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
            packed["params"] = [index_of[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state._items.values():
            if id(p) in index_of:
                state[index_of[id(p)]] = {k: (_wrap(v) if hasattr(v, "shape") else v) for k, v in s.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a dict from ``state_dict()`` (of this optimizer class, over parameters of the
        same shapes in the same order). Everything is checked before anything changes, so a
        mismatched dict raises and leaves the optimizer as it was.

        Buffers are copied and cast to their parameter's dtype; step counts and options are
        taken as saved; the parameters stay this optimizer's own.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: expected a dict with 'state' and 'param_groups' "
                "(from Optimizer.state_dict())"
            )
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError(
                "loaded state dict contains a parameter group that doesn't match the size of optimizer's group"
            )
        param_of = {
            _index(i): p
            for i, p in zip(
                itertools.chain.from_iterable(s["params"] for s in saved_groups),
                itertools.chain.from_iterable(g["params"] for g in groups),
            )
        }

        new_state = []
        for key, saved in state_dict["state"].items():
            p = param_of.get(_index(key))
            if p is None:
                continue  # state of a parameter no group names: PyTorch keeps it too, unused
            if not isinstance(saved, dict):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state of parameter {key} is not a dict")
            param = p.data
            entry = {}
            for name, value in saved.items():
                if _is_tensor(value) or isinstance(value, np.ndarray):
                    arr = _as_array(value)
                    if name == "step":
                        entry[name] = int(arr.item())
                        continue
                    if tuple(arr.shape) != tuple(param.shape):
                        raise ValueError(
                            f"{type(self).__name__}.load_state_dict: state {name!r} of parameter {key} has "
                            f"shape {tuple(arr.shape)} but the parameter has shape {tuple(param.shape)}"
                        )
                    # a copy, on the parameter's device (a GPU state loads into a CPU optimizer and back)
                    arr = _device.to_device(arr, _device.device_name(param))
                    entry[name] = arr.astype(param.dtype if arr.dtype.kind == "f" else arr.dtype, copy=True)
                else:
                    entry[name] = copy.deepcopy(value)
            new_state.append((p, entry))

        for group in saved_groups:
            for name, value in group.items():
                if isinstance(self.defaults.get(name), tuple) and isinstance(value, list):
                    group[name] = tuple(value)  # betas come back from JSON as lists
        # all checked: now change
        self.state = _ParamState()
        for p, entry in new_state:
            self.state[p] = entry
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            new_groups.append(saved)
        self.param_groups = new_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def __getstate__(self):
        return self.__dict__

    def __setstate__(self, state):
        self.__dict__.update(state)


def _at_least_1d(array):
    """A view of ``array`` with at least one dimension (writes go through to ``array``)."""
    return array.reshape(1) if array.ndim == 0 else array


def _buffer(state, name, p, fill=0, like=None):
    """The update's view of the state buffer ``name`` of parameter ``p``; created when
    missing with the parameter's shape and dtype, filled with ``fill`` or copied from
    ``like``."""
    buf = state.get(name)
    if buf is None:
        data = p.data
        buf = like.reshape(data.shape).astype(data.dtype, copy=True) if like is not None else np.full_like(data, fill)
        state[name] = buf
    return _at_least_1d(buf)


def _index(key):
    """State-dict parameter indices are ints; accept their string form (from JSON) too."""
    if isinstance(key, str) and key.lstrip("-").isdigit():
        return int(key)
    return key
