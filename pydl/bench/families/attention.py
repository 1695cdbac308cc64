"""scaled dot-product attention, forward and forward+backward, float32, B8 H8 D64.

GFLOP/s counts the products of the textbook algorithm: 4 B H L S D for the forward
(Q K^T and A V), 2.5x that more for the backward (dV, dA, dQ, dK and the recomputed
Q K^T of a fused kernel), halved for causal masks (the work a kernel that skips the
masked half has to do). torch is ``torch.nn.functional.scaled_dot_product_attention``.
"""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (pass, B, H, N, D, causal): DESIGN.md's canonical shapes, and one small (the cost of a call)
SHAPES = [(p, 8, 8, n, 64, c) for p in ("fwd", "fwd+bwd") for n in (256, 1024) for c in (False, True)]
SHAPES.append(("fwd+bwd", 1, 2, 64, 32, False))
QUICK = [("fwd", 1, 2, 9, 8, True), ("fwd+bwd", 1, 2, 9, 8, False)]

# The float64 reference forms the (N, N) matrices of every head: timed up to N = 256 only.
REFERENCE_MAX_N = 256


def case(shape):
    kind, b, h, n, d, causal = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = kernel("attention_forward"), kernel("attention_backward")
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((b, h, n, d), dtype=np.float32) for _ in range(4))  # (B, H, N, D)

    def with_kernels(fwd, bwd):
        def run():
            out, lse = fwd(q, k, v, None, causal)
            return out if not backward_too else (out,) + tuple(bwd(g, q, k, v, out, lse, None, causal))
        return run

    ref_fwd, ref_bwd = reference_kernel("attention_forward"), reference_kernel("attention_backward")
    run = {"pydl": with_kernels(forward, backward)}
    notes = []
    if n <= REFERENCE_MAX_N:
        run["reference"] = with_kernels(ref_fwd, ref_bwd)
    else:
        notes.append(f"reference (float64, forms the N x N matrices) timed up to N = {REFERENCE_MAX_N} only.")
    t = torch()
    if t is not None:
        run["torch"] = torch_sdpa(t, [t.from_numpy(a) for a in (q, k, v, g)], causal, backward_too)
    flops = 4.0 * b * h * n * n * d * (3.5 if backward_too else 1.0) * (0.5 if causal else 1.0)
    notes.append("attention GFLOP/s = 4 B H N^2 D (x3.5 for fwd+bwd, x0.5 causal) / median time.")
    return Case(case_name(shape), run, lambda: truth(q, k, v, g, causal, backward_too), flops=flops, notes=notes)


def case_name(shape):
    kind, b, h, n, d, causal = shape
    return f"{kind} B{b} H{h} N{n} D{d}" + (" causal" if causal else "")


def truth(q, k, v, g, causal, backward_too):
    """The float64 reference on host arrays, head by head (one head's (N, N) matrices at a time)."""
    ref_fwd, ref_bwd = reference_kernel("attention_forward"), reference_kernel("attention_backward")
    b, h, n, d = q.shape
    outs = []
    for i in range(b):
        for j in range(h):
            args = (q[i, j], k[i, j], v[i, j])
            out, lse = ref_fwd(*args, None, causal)
            outs.append((out,) + (tuple(ref_bwd(g[i, j], *args, out, lse, None, causal)) if backward_too else ()))
    stacked = [np.stack([o[m] for o in outs]).reshape(b, h, n, d) for m in range(len(outs[0]))]
    return stacked[0] if not backward_too else tuple(stacked)


def torch_sdpa(t, tensors, causal, backward_too):
    """A callable running torch's scaled_dot_product_attention (and its backward) on torch tensors q, k, v, g."""
    F = t.nn.functional
    tq, tk, tv, tg = tensors
    tq, tk, tv = (a.detach().requires_grad_(backward_too) for a in (tq, tk, tv))

    def torch_run():
        if not backward_too:
            with t.no_grad():
                return F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        tq.grad = tk.grad = tv.grad = None
        out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
        out.backward(tg)
        return out, tq.grad, tk.grad, tv.grad
    return torch_run


# GPU cases (pydl bench --device cuda): the canonical shapes and issue 8's N = 4096 (forward,
# B1 H8: its float64 truth is formed on the host, one 4096 x 4096 head at a time).
CUDA_SHAPES = SHAPES[:-1] + [("fwd", 1, 8, 4096, 64, c) for c in (False, True)]
CUDA_QUICK = QUICK


def cuda_case(shape):
    from .. import gpu

    kind, b, h, n, d, causal = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = gpu.kernel("attention_forward"), gpu.kernel("attention_backward")
    rng = np.random.default_rng(0)
    host = [rng.standard_normal((b, h, n, d), dtype=np.float32) for _ in range(4)]  # q, k, v, g (B, H, N, D)
    q, k, v, g = gpu.to_gpu(*host)

    def run_pydl():
        out, lse = forward(q, k, v, None, causal)
        return out if not backward_too else (out,) + tuple(backward(g, q, k, v, out, lse, None, causal))

    run = {"pydl": run_pydl}
    t = gpu.torch_cuda()
    if t is not None:
        run["torch"] = torch_sdpa(t, [t.from_dlpack(a) for a in (q, k, v, g)], causal, backward_too)
    flops = 4.0 * b * h * n * n * d * (3.5 if backward_too else 1.0) * (0.5 if causal else 1.0)
    notes = ["GPU attention GFLOP/s = 4 B H N^2 D (x3.5 fwd+bwd, x0.5 causal) / median time; torch = "
             "scaled_dot_product_attention on CUDA tensors (its flash / memory-efficient kernels); truth: the "
             "float64 reference on the host."]
    return Case(case_name(shape), run, lambda: truth(*host, causal, backward_too), flops=flops, notes=notes)
