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


def case(shape):
    what, steps, b, i, h = shape
    cell = what == "cell"
    rng = np.random.default_rng(0)
    s = 1.0 / np.sqrt(h)
    w_ih, w_hh = (rng.uniform(-s, s, shp).astype(np.float32) for shp in [(4 * h, i), (4 * h, h)])
    b_ih, b_hh = (rng.uniform(-s, s, 4 * h).astype(np.float32) for _ in range(2))
    x = rng.standard_normal((b, i) if cell else (steps, b, i), dtype=np.float32)
    h0, c0, gh, gc = (rng.standard_normal((b, h), dtype=np.float32) for _ in range(4))
    g_out = rng.standard_normal((steps, b, h), dtype=np.float32)

    if cell:
        fwd, bwd = kernel("lstm_cell_forward"), kernel("lstm_cell_backward")

        def with_kernels(fwd, bwd):
            def run():
                h1, c1, cache = fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
                return (h1, c1) + tuple(bwd(gh, gc, cache))
            return run
        ref = (reference_kernel("lstm_cell_forward"), reference_kernel("lstm_cell_backward"))
    else:
        fwd, bwd = kernel("lstm_forward"), kernel("lstm_backward")

        def with_kernels(fwd, bwd):
            def run():
                out, h_t, c_t, cache = fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
                return (out,) + tuple(bwd(g_out, None, None, cache))
            return run
        ref = (reference_kernel("lstm_forward"), reference_kernel("lstm_backward"))

    run = {"pydl": with_kernels(fwd, bwd)}
    notes = []
    if cell:
        run["reference"] = with_kernels(*ref)
    else:
        notes.append("reference (float64, a NumPy loop over the steps) timed for single cells only.")
    t = torch()
    if t is not None:
        mod = (t.nn.LSTMCell if cell else t.nn.LSTM)(i, h)
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        params = [getattr(mod, n if cell else n + "_l0") for n in names]
        with t.no_grad():
            for p, a in zip(params, (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(t.from_numpy(a))
        tx = t.from_numpy(x).requires_grad_()
        th, tc = (t.from_numpy(a if cell else a[None]).requires_grad_() for a in (h0, c0))
        tgh, tgc, tgo = t.from_numpy(gh), t.from_numpy(gc), t.from_numpy(g_out)

        def torch_run():
            for p in [tx, th, tc] + params:
                p.grad = None
            if cell:
                h1, c1 = mod(tx, (th, tc))
                t.autograd.backward([h1, c1], [tgh, tgc])
                return (h1, c1, tx.grad, th.grad, tc.grad) + tuple(p.grad for p in params)
            out, _ = mod(tx, (th, tc))
            out.backward(tgo)
            return (out, tx.grad, th.grad[0], tc.grad[0]) + tuple(p.grad for p in params)
        run["torch"] = torch_run
    flops = 3 * 2.0 * b * (i + h) * 4 * h * steps
    notes.append("lstm GFLOP/s = 3 x 2 B (I + H) 4H per step (forward, input and weight gradients) / median time.")
    name = (f"cell fwd+bwd B{b} I{i} H{h}" if cell else f"layer T{steps} fwd+bwd B{b} I{i} H{h}")
    return Case(name, run, with_kernels(*ref), flops=flops, rtol=1e-4 if cell else 1e-3, notes=notes)
