"""layer_norm over the last axis, forward and forward+backward, float32, affine. GB/s
counts x read and y written (forward), plus grad_out and x read and grad_input written
(backward): pydl's actual traffic, since each row stays in L1 between its sweeps."""
from ._affine_norm import cpu_case, gpu_case, inputs

# (pass, rows, D): the canonical 12544 x 768 (a ViT-B/16 batch of 64 x 196 tokens), and a
# small shape (the cost of a call)
SHAPES = [("fwd", 12544, 768), ("fwd+bwd", 12544, 768), ("fwd+bwd", 64, 256)]
QUICK = [("fwd", 9, 33), ("fwd+bwd", 9, 33)]


def _with_kernels(fwd, bwd, x, g, weight, bias, backward_too):
    d = x.shape[-1]
    if not backward_too:
        return lambda: fwd(x, (d,), weight, bias)[0]

    def fwd_bwd():
        out, mean, rstd = fwd(x, (d,), weight, bias)
        return (out,) + tuple(bwd(g, x, (d,), mean, rstd, weight))
    return fwd_bwd


def _torch_op(t):
    return lambda tx, tw, tb: t.nn.functional.layer_norm(tx, (tx.shape[-1],), tw, tb)


def case(shape):
    kind, rows, d = shape
    return cpu_case(f"{kind} {rows}x{d}", "layer_norm", _with_kernels, _torch_op, inputs((rows, d), d),
                    kind == "fwd+bwd",
                    "layer_norm GB/s = (x read, y written; fwd+bwd adds grad_out and x read and grad_input written) / "
                    "median time.")


# GPU cases (pydl bench --device cuda): the canonical 12544 x 768, and a row past 1024 values
# (a block per row instead of a warp).
CUDA_SHAPES = [("fwd", 12544, 768), ("fwd+bwd", 12544, 768), ("fwd+bwd", 4096, 4096)]
CUDA_QUICK = [("fwd", 9, 33), ("fwd+bwd", 9, 33)]


def cuda_case(shape):
    kind, rows, d = shape
    return gpu_case(f"{kind} {rows}x{d}", "layer_norm", _with_kernels, _torch_op, inputs((rows, d), d),
                    kind == "fwd+bwd")
