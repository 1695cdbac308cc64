"""softmax forward over the last axis, float32. GB/s counts x read once and y written once."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

SHAPES = [(4096, 1024)]  # (N, C)
QUICK = [(7, 33)]


def case(shape):
    n, c = shape
    forward = kernel("softmax_forward")
    x = 4.0 * np.random.default_rng(0).standard_normal((n, c), dtype=np.float32)  # (N, C)

    def expected():
        x64 = x.astype(np.float64)
        e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    run = {"pydl": lambda: forward(x)}
    ref = reference_kernel("softmax_forward")
    if ref is not None:
        run["reference"] = lambda: ref(x)
    t = torch()
    if t is not None:
        tx = t.from_numpy(x)
        run["torch"] = lambda: t.softmax(tx, dim=-1)
    return Case(f"fwd {n}x{c}", run, expected, bytes=2.0 * x.nbytes, notes=[
        "GB/s = (x read + y written: 2 x 4 B per element) / median time, the traffic of one pass; "
        "the reference computes in float64."])


# GPU cases (pydl bench --device cuda): the canonical shape (a warp per row) and long rows
# (a block per row).
CUDA_SHAPES = [(4096, 1024), (4096, 32768)]
CUDA_QUICK = [(7, 33)]


def cuda_case(shape):
    from .. import gpu

    n, c = shape
    forward = gpu.kernel("softmax_forward")
    host = 4.0 * np.random.default_rng(0).standard_normal((n, c), dtype=np.float32)  # (N, C)
    x = gpu.to_gpu(host)
    run = {"pydl": lambda: forward(x)}
    t = gpu.torch_cuda()
    if t is not None:
        tx = t.from_dlpack(x)
        run["torch"] = lambda: t.softmax(tx, dim=-1)
    return Case(f"fwd {n}x{c}", run, lambda: reference_kernel("softmax_forward")(host), bytes=2.0 * x.nbytes)
