"""gemm: C = A @ B in float32 -- square sizes and a batched product. GFLOP/s = 2*M*N*K / time."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (batch, M, N, K); batch 0 is a plain 2-D product. 64^3 shows the cost of a call itself.
SHAPES = [(0, 64, 64, 64), (0, 256, 256, 256), (0, 512, 512, 512), (0, 1024, 1024, 1024),
          (0, 2048, 2048, 2048), (64, 128, 128, 64)]
QUICK = [(0, 33, 17, 9), (3, 8, 5, 7)]

# The float64 reference (einsum) needs seconds per call beyond 1024^3: not timed there.
REFERENCE_MAX_FLOPS = 2.0 * 1024 ** 3


def case(shape):
    batch, m, n, k = shape
    gemm = kernel("gemm")
    rng = np.random.default_rng(0)
    lead = (batch,) if batch else ()
    a = rng.standard_normal(lead + (m, k), dtype=np.float32)  # (B,) M x K
    b = rng.standard_normal(lead + (k, n), dtype=np.float32)  # (B,) K x N
    flops = 2.0 * m * n * k * max(batch, 1)
    run = {"pydl": lambda: gemm(a, b)}
    notes = ["GFLOP/s = 2*M*N*K (times the batch) / median time; all float32 except the reference (float64)."]
    ref = reference_kernel("gemm")
    if ref is not None and flops <= REFERENCE_MAX_FLOPS:
        run["reference"] = lambda: ref(a, b)
    elif ref is not None:
        notes.append("reference (float64 einsum, one thread) not timed above 1024^3: seconds per call.")
    run["numpy"] = lambda: np.matmul(a, b)
    t = torch()
    if t is not None:
        ta, tb = t.from_numpy(a), t.from_numpy(b)
        run["torch"] = lambda: t.matmul(ta, tb)
    name = f"{batch}x({m}x{k}@{k}x{n})" if batch else f"{m}x{n}x{k}"
    return Case(name, run, expected=lambda: np.matmul(a.astype(np.float64), b.astype(np.float64)),
                flops=flops, blas_impls=("numpy",), notes=notes)
