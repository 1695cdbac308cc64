"""layer_norm over the last axis, forward and forward+backward, float32, affine. GB/s
counts x read and y written (forward), plus grad_out and x read and grad_input written
(backward): pydl's actual traffic, since each row stays in L1 between its sweeps."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (pass, rows, D): the canonical 12544 x 768 (a ViT-B/16 batch of 64 x 196 tokens), and a
# small shape (the cost of a call)
SHAPES = [("fwd", 12544, 768), ("fwd+bwd", 12544, 768), ("fwd+bwd", 64, 256)]
QUICK = [("fwd", 9, 33), ("fwd+bwd", 9, 33)]

REFERENCE_MAX_ELEMENTS = 1 << 22


def _inputs(rows, d):
    """(x, grad_out, weight, bias) on the host, float32; x is (R, D)."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((rows, d), dtype=np.float32) + 0.5, rng.standard_normal((rows, d), dtype=np.float32),
            (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32), (0.1 * rng.standard_normal(d)).astype(np.float32))


def _with_kernels(fwd, bwd, x, g, weight, bias, backward_too):
    d = x.shape[-1]
    if not backward_too:
        return lambda: fwd(x, (d,), weight, bias)[0]

    def fwd_bwd():
        out, mean, rstd = fwd(x, (d,), weight, bias)
        return (out,) + tuple(bwd(g, x, (d,), mean, rstd, weight))
    return fwd_bwd


def _torch_run(t, tx, tg, tw, tb, backward_too):
    F, d = t.nn.functional, tx.shape[-1]

    def torch_run():
        if not backward_too:
            with t.no_grad():
                return F.layer_norm(tx, (d,), tw, tb)
        tx.grad = tw.grad = tb.grad = None
        y = F.layer_norm(tx, (d,), tw, tb)
        y.backward(tg)
        return y, tx.grad, tw.grad, tb.grad
    return torch_run


def _reference(host, backward_too):
    return _with_kernels(reference_kernel("layer_norm_forward"), reference_kernel("layer_norm_backward"), *host,
                         backward_too)


def case(shape):
    kind, rows, d = shape
    backward_too = kind == "fwd+bwd"
    host = x, g, weight, bias = _inputs(rows, d)
    run = {"pydl": _with_kernels(kernel("layer_norm_forward"), kernel("layer_norm_backward"), *host, backward_too)}
    if x.size <= REFERENCE_MAX_ELEMENTS:
        run["reference"] = _reference(host, backward_too)
    t = torch()
    if t is not None:
        tw, tb = t.from_numpy(weight).requires_grad_(), t.from_numpy(bias).requires_grad_()
        tx = t.from_numpy(x).requires_grad_(backward_too)
        run["torch"] = _torch_run(t, tx, t.from_numpy(g), tw, tb, backward_too)
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(f"{kind} {rows}x{d}", run, _reference(host, backward_too), bytes=float(nbytes), notes=[
        "layer_norm GB/s = (x read, y written; fwd+bwd adds grad_out and x read and grad_input written) / "
        "median time."])


# GPU cases (pydl bench --device cuda): the canonical 12544 x 768, and a row past 1024 values
# (a block per row instead of a warp).
CUDA_SHAPES = [("fwd", 12544, 768), ("fwd+bwd", 12544, 768), ("fwd+bwd", 4096, 4096)]
CUDA_QUICK = [("fwd", 9, 33), ("fwd+bwd", 9, 33)]


def cuda_case(shape):
    from .. import gpu

    kind, rows, d = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = gpu.kernel("layer_norm_forward"), gpu.kernel("layer_norm_backward")
    host = _inputs(rows, d)
    x, g, weight, bias = gpu.to_gpu(*host)
    run = {"pydl": _with_kernels(forward, backward, x, g, weight, bias, backward_too)}
    t = gpu.torch_cuda()
    if t is not None:
        tx, tg = t.from_dlpack(x).requires_grad_(backward_too), t.from_dlpack(g)
        tw, tb = t.from_dlpack(weight).requires_grad_(), t.from_dlpack(bias).requires_grad_()
        run["torch"] = _torch_run(t, tx, tg, tw, tb, backward_too)
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(f"{kind} {rows}x{d}", run, _reference(host, backward_too), bytes=float(nbytes))
