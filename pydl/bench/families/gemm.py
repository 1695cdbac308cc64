"""gemm: C = A @ B in float32 -- square sizes and a batched product. GFLOP/s = 2*M*N*K / time."""
import numpy as np

from ..harness import Case, Unavailable, kernel, reference_kernel, torch

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


# ---------------------------------------------------------------- GPU (pydl bench --device cuda)
# (batch, M, N, K, precision): the canonical sizes, issue 8's 4096 and 8192, and the
# tensor-core rows. "tf32" / "bf16" need the cuda gemm to take ``precision=`` (float32
# arrays in and out, products rounded to TF32 / bfloat16 on the tensor cores); until it
# does those rows say "not available".
CUDA_SHAPES = ([(0, s, s, s, "fp32") for s in (64, 256, 512, 1024, 2048, 4096, 8192)] + [(64, 128, 128, 64, "fp32")]
               + [(0, s, s, s, p) for p in ("tf32", "bf16") for s in (4096, 8192)])
CUDA_QUICK = [(0, 33, 17, 9, "fp32"), (3, 8, 5, 7, "fp32")]
# normwise tolerance per precision: TF32 keeps 10 mantissa bits, bfloat16 7
CUDA_RTOL = {"fp32": 1e-4, "tf32": 5e-3, "bf16": 3e-2}


def cuda_case(shape):
    import inspect

    from .. import gpu

    batch, m, n, k, precision = shape
    gemm = gpu.kernel("gemm")
    extra = {}
    if precision != "fp32":
        if "precision" not in inspect.signature(gemm).parameters:
            raise Unavailable(f"the cuda gemm has no precision= argument (no {precision} tensor-core path) yet")
        extra = {"precision": precision}
    cp = gpu.cupy()
    rng = np.random.default_rng(0)
    lead = (batch,) if batch else ()
    a, b = gpu.to_gpu(rng.standard_normal(lead + (m, k), dtype=np.float32),  # (B,) M x K
                      rng.standard_normal(lead + (k, n), dtype=np.float32))  # (B,) K x N
    run = {"pydl": lambda: gemm(a, b, **extra), "cupy": lambda: cp.matmul(a, b)}
    notes = ["GPU: GFLOP/s = 2*M*N*K (times the batch) / median time; cupy = cupy.matmul (cuBLAS); the truth is "
             "cuBLAS's float64 product of the same inputs."]
    t = gpu.torch_cuda()
    if t is not None:
        ta, tb = t.from_dlpack(a), t.from_dlpack(b)  # the same device memory
        if precision == "bf16":
            ta, tb = ta.bfloat16(), tb.bfloat16()

        def torch_run():
            with gpu.torch_tf32(t, precision == "tf32"):
                return t.matmul(ta, tb)
        run["torch"] = torch_run
        notes.append("torch = torch.matmul on CUDA tensors (TF32 allowed only in the tf32 rows; bfloat16 operands "
                     "in the bf16 rows).")
    if precision != "fp32":
        del run["cupy"]  # cupy.matmul is plain float32: not the same work
    name = (f"{batch}x({m}x{k}@{k}x{n})" if batch else f"{m}x{n}x{k}") + ("" if precision == "fp32" else f" {precision}")
    return Case(name, run, expected=lambda: cp.matmul(a.astype(cp.float64), b.astype(cp.float64)),
                flops=2.0 * m * n * k * max(batch, 1), rtol=CUDA_RTOL[precision], notes=notes)
