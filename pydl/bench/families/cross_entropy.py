"""cross_entropy (mean over N, int64 targets) forward, and forward+backward, float32.

GB/s counts the traffic of one fused pass: logits read once and the int64 targets read,
plus, for fwd+bwd, the gradient written once.
"""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

SHAPES = [("fwd", 4096, 1000), ("fwd+bwd", 4096, 1000)]  # (pass, N, C)
QUICK = [("fwd", 9, 5), ("fwd+bwd", 9, 5)]


def case(shape):
    kind, n, c = shape
    backward_too = kind == "fwd+bwd"
    forward = kernel("cross_entropy_forward")
    backward = kernel("cross_entropy_backward") if backward_too else None
    rng = np.random.default_rng(0)
    logits = 3.0 * rng.standard_normal((n, c), dtype=np.float32)  # (N, C)
    target = rng.integers(0, c, size=n, dtype=np.int64)  # (N,)
    grad_loss = np.ones((), dtype=np.float32)

    def expected():
        x = logits.astype(np.float64)
        m = x.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
        loss = np.mean(lse - x[np.arange(n), target])
        if not backward_too:
            return loss
        grad = np.exp(x - lse[:, None])
        grad[np.arange(n), target] -= 1.0
        return loss, grad / n

    def with_kernels(fwd, bwd):
        if not backward_too:
            return lambda: fwd(logits, target)[0]

        def fwd_bwd():
            loss, cache = fwd(logits, target)
            return loss, bwd(grad_loss, cache)
        return fwd_bwd

    run = {"pydl": with_kernels(forward, backward)}
    ref_fwd, ref_bwd = reference_kernel("cross_entropy_forward"), reference_kernel("cross_entropy_backward")
    if ref_fwd is not None and (ref_bwd is not None or not backward_too):
        run["reference"] = with_kernels(ref_fwd, ref_bwd)
    t = torch()
    if t is not None:
        F = t.nn.functional
        tt = t.from_numpy(target)
        if not backward_too:
            tl = t.from_numpy(logits)
            run["torch"] = lambda: F.cross_entropy(tl, tt)
        else:
            tl = t.from_numpy(logits).requires_grad_()

            def torch_fwd_bwd():
                tl.grad = None
                loss = F.cross_entropy(tl, tt)
                loss.backward()
                return loss, tl.grad
            run["torch"] = torch_fwd_bwd
    nbytes = logits.nbytes * (2 if backward_too else 1) + target.nbytes
    return Case(f"{kind} {n}x{c}", run, expected, bytes=float(nbytes), notes=[
        "GB/s = (logits read once + int64 targets read, + the gradient written once for fwd+bwd) / "
        "median time: the traffic of one fused pass; the reference computes in float64."])


# GPU cases (pydl bench --device cuda): the canonical shape (a warp per row) and a large
# vocabulary (a block per row).
CUDA_SHAPES = [("fwd", 4096, 1000), ("fwd+bwd", 4096, 1000), ("fwd+bwd", 4096, 32000)]
CUDA_QUICK = [("fwd", 9, 5), ("fwd+bwd", 9, 5)]


def cuda_case(shape):
    from .. import gpu

    kind, n, c = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = gpu.kernel("cross_entropy_forward"), gpu.kernel("cross_entropy_backward")
    rng = np.random.default_rng(0)
    host = (3.0 * rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, size=n, dtype=np.int64))
    logits, target = gpu.to_gpu(*host)

    def with_kernels(fwd, bwd, logits, target):
        if not backward_too:
            return lambda: fwd(logits, target)[0]

        def fwd_bwd():
            loss, cache = fwd(logits, target)
            return loss, bwd(1.0, cache)
        return fwd_bwd

    run = {"pydl": with_kernels(forward, backward, logits, target)}
    t = gpu.torch_cuda()
    if t is not None:
        F = t.nn.functional
        tt = t.from_dlpack(target)
        tl = t.from_dlpack(logits).requires_grad_(backward_too)

        def torch_run():
            if not backward_too:
                with t.no_grad():
                    return F.cross_entropy(tl, tt)
            tl.grad = None
            loss = F.cross_entropy(tl, tt)
            loss.backward()
            return loss, tl.grad
        run["torch"] = torch_run
    expected = with_kernels(reference_kernel("cross_entropy_forward"), reference_kernel("cross_entropy_backward"),
                            *host)
    nbytes = logits.nbytes * (2 if backward_too else 1) + target.nbytes
    return Case(f"{kind} {n}x{c}", run, expected, bytes=float(nbytes), notes=[
        "pydl's cuda cross_entropy checks the target range on the host (one synchronisation per call), "
        "as the CPU raises ValueError for a bad target; PyTorch checks on the device (an assert)."])
