"""``summary(model, input_size)``: per-layer output shapes, parameters, multiply-adds and
output memory of a model, and their totals (the seeds' bookkeeping for a conv layer).

The seeds' worked example, AlexNet's first layer: 64 filters of 11x11 with stride 4 and
padding 2 on a 3x227x227 image give 64 x 56 x 56 outputs ((227 - 11 + 2*2) / 4 + 1 = 56);
64 * 3 * 11 * 11 weights + 64 biases = 23,296 parameters; every output is a dot product of
3 * 11 * 11 = 363 terms, so 200,704 * 363 = 72,855,552 multiply-adds; the output takes
200,704 * 4 bytes = 784 KB in float32.

How: one forward pass of a random input through the model in eval mode and
without recording a graph, with a forward hook on every leaf module (and on any module
that holds parameters of its own) noting what came out. Multiply-adds are counted for the
layers that do matrix products -- Conv2d: outputs x (C_in / groups) x KH x KW;
ConvTranspose2d: inputs x (C_out / groups) x KH x KW; Linear: outputs x in_features --
and as 0 for element-wise layers (activations, normalisation, pooling), whose cost is
memory traffic rather than arithmetic. Memory is in binary units (1 KB = 1024 bytes), as
the seeds count it.
"""
from collections import namedtuple

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, _Defaults, _make

__all__ = ["LayerSummary", "ModelSummary", "summary"]

LayerSummary = namedtuple("LayerSummary", ["name", "type", "output_shape", "params", "mult_adds", "output_bytes"])
LayerSummary.__doc__ = """One call of one layer: its dotted name, class name, output shape (a list of shapes for
several outputs), parameters (counted at the layer's first call only), multiply-adds and output bytes."""


def _fmt_bytes(n):
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _tensors(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


def _mult_adds(module, inputs, outputs):
    from ..nn import Conv2d, ConvTranspose2d, Linear

    if not outputs:
        return 0
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        return outputs[0].numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, ConvTranspose2d):
        kh, kw = module.kernel_size
        return inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
    if isinstance(module, Linear):
        return outputs[0].numel() * module.in_features
    return 0


class ModelSummary:
    """What :func:`summary` returns: ``layers`` (a list of :class:`LayerSummary`) and the
    totals ``total_params``, ``trainable_params``, ``total_mult_adds``,
    ``total_output_bytes`` (the outputs of every listed layer), ``input_bytes`` and
    ``param_bytes``; ``str()`` is the printed table."""

    def __init__(self, model_name, layers, total_params, trainable_params, input_bytes, param_bytes):
        self.model_name = model_name
        self.layers = layers
        self.total_params, self.trainable_params = total_params, trainable_params
        self.total_mult_adds = sum(r.mult_adds for r in layers)
        self.total_output_bytes = sum(r.output_bytes for r in layers)
        self.input_bytes, self.param_bytes = input_bytes, param_bytes

    def __getitem__(self, name):
        """The first row of the layer named ``name``."""
        for r in self.layers:
            if r.name == name:
                return r
        raise KeyError(name)

    def __str__(self):
        def shape(s):
            return " ".join(str(list(x)) for x in s) if s and isinstance(s[0], tuple) else str(list(s))

        rows = [(f"{r.name} ({r.type})", shape(r.output_shape), f"{r.params:,}", f"{r.mult_adds:,}",
                 _fmt_bytes(r.output_bytes)) for r in self.layers]
        head = ("Layer (type)", "Output Shape", "Param #", "Mult-Adds", "Output memory")
        widths = [max([len(head[i])] + [len(row[i]) for row in rows]) for i in range(5)]

        def line(cells):
            return "  ".join(c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells))

        rule_len = sum(widths) + 8
        out = [self.model_name, "-" * rule_len, line(head), "=" * rule_len]
        out += [line(row) for row in rows]
        out += ["=" * rule_len,
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.total_params - self.trainable_params:,}",
                f"Total mult-adds: {self.total_mult_adds:,}",
                "-" * rule_len,
                f"Input size: {_fmt_bytes(self.input_bytes)}",
                f"Output memory of the layers (forward pass): {_fmt_bytes(self.total_output_bytes)}",
                f"Params size: {_fmt_bytes(self.param_bytes)}",
                f"Estimated total size: {_fmt_bytes(self.input_bytes + self.total_output_bytes + self.param_bytes)}",
                "-" * rule_len]
        return "\n".join(out)

    __repr__ = __str__


def summary(model, input_size=None, dtype=None, batch_size=1, *, input_data=None, verbose=True):
    """Run ``model`` once on a batch of ``batch_size`` random inputs of ``input_size`` (the
    shape of one sample, ``(C, H, W)``; a list of shapes for a model with several inputs),
    print a table of every layer's output shape, parameters, multiply-adds and output
    memory with the totals (unless ``verbose=False``), and return it as a
    :class:`ModelSummary`. ``input_data`` (a Tensor or a tuple of them) replaces the random
    input. The model's train/eval flags are restored afterwards.

    >>> s = summary(pydl.nn.Conv2d(3, 64, 11, stride=4, padding=2), (3, 227, 227), verbose=False)
    >>> r = s.layers[0]
    >>> r.output_shape, r.params, r.mult_adds, r.output_bytes
    ((1, 64, 56, 56), 23296, 72855552, 802816)
    >>> print(summary(pydl.nn.Sequential(pydl.nn.Conv2d(3, 10, 5, padding=2), pydl.nn.ReLU()), (3, 32, 32),
    ...               verbose=False))  # doctest: +NORMALIZE_WHITESPACE
    Sequential
    ----------------------------------------------------------------
    Layer (type)  Output Shape     Param #  Mult-Adds  Output memory
    ================================================================
    0 (Conv2d)    [1, 10, 32, 32]      760    768,000       40.00 KB
    1 (ReLU)      [1, 10, 32, 32]        0          0       40.00 KB
    ================================================================
    Total params: 760
    Trainable params: 760
    Non-trainable params: 0
    Total mult-adds: 768,000
    ----------------------------------------------------------------
    Input size: 12.00 KB
    Output memory of the layers (forward pass): 80.00 KB
    Params size: 2.97 KB
    Estimated total size: 94.97 KB
    ----------------------------------------------------------------
    """
    from ..nn import Module

    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a pydl.nn.Module, got {type(model).__name__}")
    if input_data is None:
        if input_size is None:
            raise ValueError("summary: give input_size (the shape of one sample, e.g. (3, 32, 32)) or input_data")
        sizes = [tuple(input_size)] if not input_size or not isinstance(input_size[0], (tuple, list)) else \
            [tuple(s) for s in input_size]
        dt = _Defaults.float_dtype if dtype is None else np.dtype(dtype)
        rng = np.random.default_rng(0)  # the global generator is left alone
        inputs = []
        for s in sizes:
            if any(not isinstance(v, (int, np.integer)) or v < 0 for v in s):
                raise ValueError(f"summary: input_size must hold non-negative ints, got {s}")
            shape = (int(batch_size),) + tuple(int(v) for v in s)
            if dt.kind == "f":
                inputs.append(_make(rng.standard_normal(shape).astype(dt)))
            else:
                inputs.append(_make(np.zeros(shape, dtype=dt)))
    else:
        inputs = [input_data] if isinstance(input_data, Tensor) else list(input_data)

    rows, seen, handles = [], set(), []
    names = {}
    for name, m in model.named_modules():
        names.setdefault(id(m), name or type(m).__name__)

    def hook(module, args, output):
        outs = _tensors(output)
        first = id(module) not in seen
        seen.add(id(module))
        params = sum(p.numel() for p in module.parameters(recurse=False)) if first else 0
        shapes = tuple(tuple(t.shape) for t in outs)
        rows.append(LayerSummary(names[id(module)], type(module).__name__, shapes[0] if len(shapes) == 1 else shapes,
                                 params, _mult_adds(module, _tensors(args), outs),
                                 sum(t.data.nbytes for t in outs)))

    for m in model.modules():
        has_children = any(True for _ in m.children())
        if not has_children or any(True for _ in m.parameters(recurse=False)):
            handles.append(m.register_forward_hook(hook))
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes:
            m.__dict__["training"] = mode

    params = list(model.parameters())
    result = ModelSummary(type(model).__name__, rows, sum(p.numel() for p in params),
                          sum(p.numel() for p in params if p.requires_grad),
                          sum(t.data.nbytes for t in inputs if isinstance(t, Tensor)),
                          sum(p.data.nbytes for p in params))
    if verbose:
        print(result)
    return result
