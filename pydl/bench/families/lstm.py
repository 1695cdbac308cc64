"""LSTM, forward+backward, float32: one cell step, and a 50-step layer (the time loop).

GFLOP/s counts the products: 2 B (I + H) 4H per step forward, twice that backward (the
input and weight gradients). torch is ``torch.nn.LSTMCell`` / ``torch.nn.LSTM`` with the
same weights, backward through autograd.
"""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (what, T, B, I, H): DESIGN.md's canonical shapes, and a small cell (the cost of a call)
SHAPES = [("cell", 1, 64, 512, 512), ("layer", 50, 64, 512, 512), ("cell", 1, 4, 32, 32)]
QUICK = [("cell", 1, 3, 5, 7), ("layer", 4, 3, 5, 7)]

# The float64 reference loops over the steps in NumPy: timed for single cells only.


def inputs(shape):
    """The host arrays of a case: w_ih, w_hh, b_ih, b_hh, x, h0, c0, grad_h, grad_c, grad_out."""
    what, steps, b, i, h = shape
    rng = np.random.default_rng(0)
    s = 1.0 / np.sqrt(h)
    w_ih, w_hh = (rng.uniform(-s, s, shp).astype(np.float32) for shp in [(4 * h, i), (4 * h, h)])
    b_ih, b_hh = (rng.uniform(-s, s, 4 * h).astype(np.float32) for _ in range(2))
    x = rng.standard_normal((b, i) if what == "cell" else (steps, b, i), dtype=np.float32)
    h0, c0, gh, gc = (rng.standard_normal((b, h), dtype=np.float32) for _ in range(4))
    g_out = rng.standard_normal((steps, b, h), dtype=np.float32)
    return [w_ih, w_hh, b_ih, b_hh, x, h0, c0, gh, gc, g_out]


def with_kernels(fwd, bwd, arrays, cell):
    """A callable running forward then backward of a cell (or a layer) on ``arrays`` (see inputs)."""
    w_ih, w_hh, b_ih, b_hh, x, h0, c0, gh, gc, g_out = arrays

    def run():
        if cell:
            h1, c1, cache = fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
            return (h1, c1) + tuple(bwd(gh, gc, cache))
        out, h_t, c_t, cache = fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        return (out,) + tuple(bwd(g_out, None, None, cache))
    return run


def torch_lstm(t, tensors, cell, i, h, device):
    """A callable running torch.nn.LSTMCell / LSTM (forward and autograd backward) with the same weights."""
    w_ih, w_hh, b_ih, b_hh, x, h0, c0, gh, gc, g_out = tensors
    mod = (t.nn.LSTMCell if cell else t.nn.LSTM)(i, h).to(device)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    params = [getattr(mod, n if cell else n + "_l0") for n in names]
    with t.no_grad():
        for p, a in zip(params, (w_ih, w_hh, b_ih, b_hh)):
            p.copy_(a)
    tx = x.detach().requires_grad_()
    th, tc = ((a if cell else a[None]).detach().requires_grad_() for a in (h0, c0))

    def torch_run():
        for p in [tx, th, tc] + params:
            p.grad = None
        if cell:
            h1, c1 = mod(tx, (th, tc))
            t.autograd.backward([h1, c1], [gh, gc])
            return (h1, c1, tx.grad, th.grad, tc.grad) + tuple(p.grad for p in params)
        out, _ = mod(tx, (th, tc))
        out.backward(g_out)
        return (out, tx.grad, th.grad[0], tc.grad[0]) + tuple(p.grad for p in params)
    return torch_run


def _ops(cell):
    return ("lstm_cell_forward", "lstm_cell_backward") if cell else ("lstm_forward", "lstm_backward")


def _name(shape):
    what, steps, b, i, h = shape
    return f"cell fwd+bwd B{b} I{i} H{h}" if what == "cell" else f"layer T{steps} fwd+bwd B{b} I{i} H{h}"


def case(shape):
    what, steps, b, i, h = shape
    cell = what == "cell"
    arrays = inputs(shape)
    ref = [reference_kernel(op) for op in _ops(cell)]
    run = {"pydl": with_kernels(*(kernel(op) for op in _ops(cell)), arrays, cell)}
    notes = []
    if cell:
        run["reference"] = with_kernels(*ref, arrays, cell)
    else:
        notes.append("reference (float64, a NumPy loop over the steps) timed for single cells only.")
    t = torch()
    if t is not None:
        run["torch"] = torch_lstm(t, [t.from_numpy(a) for a in arrays], cell, i, h, "cpu")
    flops = 3 * 2.0 * b * (i + h) * 4 * h * steps
    notes.append("lstm GFLOP/s = 3 x 2 B (I + H) 4H per step (forward, input and weight gradients) / median time.")
    return Case(_name(shape), run, with_kernels(*ref, arrays, cell), flops=flops, rtol=1e-4 if cell else 1e-3,
                notes=notes)


# GPU cases (pydl bench --device cuda): the canonical cell and 50-step layer.
CUDA_SHAPES = SHAPES
CUDA_QUICK = QUICK


def cuda_case(shape):
    from .. import gpu

    what, steps, b, i, h = shape
    cell = what == "cell"
    arrays = inputs(shape)
    on_gpu = list(gpu.to_gpu(*arrays))
    run = {"pydl": with_kernels(*(gpu.kernel(op) for op in _ops(cell)), on_gpu, cell)}
    t = gpu.torch_cuda()
    if t is not None:
        run["torch"] = torch_lstm(t, [t.from_dlpack(a) for a in on_gpu], cell, i, h, "cuda")
    flops = 3 * 2.0 * b * (i + h) * 4 * h * steps
    notes = ["GPU lstm GFLOP/s as on the CPU; torch = torch.nn.LSTMCell / LSTM on CUDA (cuDNN for the layer); "
             "truth: the float64 reference on the host."]
    ref = [reference_kernel(op) for op in _ops(cell)]
    return Case(_name(shape), run, with_kernels(*ref, arrays, cell), flops=flops, rtol=1e-4 if cell else 1e-3,
                notes=notes)
