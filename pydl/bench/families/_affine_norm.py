"""What the batch_norm and layer_norm families share: their float32 inputs, the PyTorch
runner, and the assembly of a CPU or GPU case around a family's own kernel runner
(``with_kernels(forward, backward, x, grad_out, weight, bias, backward_too)``) and PyTorch
op (``torch_op(t)`` -> ``op(tx, tw, tb) -> y``)."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

REFERENCE_MAX_ELEMENTS = 1 << 22


def inputs(dims, c):
    """(x, grad_out, weight, bias) on the host, float32: x and grad_out of shape ``dims``,
    the affine parameters of ``c`` values."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(dims, dtype=np.float32) + 0.5, rng.standard_normal(dims, dtype=np.float32),
            (1.0 + 0.1 * rng.standard_normal(c)).astype(np.float32), (0.1 * rng.standard_normal(c)).astype(np.float32))


def _torch_run(op, t, tx, tg, tw, tb, backward_too):
    def torch_run():
        if not backward_too:
            with t.no_grad():
                return op(tx, tw, tb)
        tx.grad = tw.grad = tb.grad = None
        y = op(tx, tw, tb)
        y.backward(tg)
        return y, tx.grad, tw.grad, tb.grad
    return torch_run


def _traffic(x, backward_too):
    """x read and y written; fwd+bwd adds grad_out and x read and grad_input written."""
    return float(2 * x.nbytes + (3 * x.nbytes if backward_too else 0))


def _expected(op, with_kernels, host, backward_too):
    return with_kernels(reference_kernel(f"{op}_forward"), reference_kernel(f"{op}_backward"), *host, backward_too)


def cpu_case(name, op, with_kernels, torch_op, host, backward_too, note):
    """The Case of the CPU kernels of ``op`` (batch_norm, layer_norm) on ``host`` (inputs())."""
    x, g, weight, bias = host
    run = {"pydl": with_kernels(kernel(f"{op}_forward"), kernel(f"{op}_backward"), *host, backward_too)}
    if x.size <= REFERENCE_MAX_ELEMENTS:
        run["reference"] = _expected(op, with_kernels, host, backward_too)
    t = torch()
    if t is not None:
        tw, tb = t.from_numpy(weight).requires_grad_(), t.from_numpy(bias).requires_grad_()
        tx = t.from_numpy(x).requires_grad_(backward_too)
        run["torch"] = _torch_run(torch_op(t), t, tx, t.from_numpy(g), tw, tb, backward_too)
    return Case(name, run, _expected(op, with_kernels, host, backward_too), bytes=_traffic(x, backward_too),
                notes=[note])


def gpu_case(name, op, with_kernels, torch_op, host, backward_too):
    """The same on the GPU: pydl's CUDA kernels against PyTorch CUDA, the truth on the host."""
    from .. import gpu

    x, g, weight, bias = gpu.to_gpu(*host)
    run = {"pydl": with_kernels(gpu.kernel(f"{op}_forward"), gpu.kernel(f"{op}_backward"), x, g, weight, bias,
                                backward_too)}
    t = gpu.torch_cuda()
    if t is not None:
        tx, tg = t.from_dlpack(x).requires_grad_(backward_too), t.from_dlpack(g)
        tw, tb = t.from_dlpack(weight).requires_grad_(), t.from_dlpack(bias).requires_grad_()
        run["torch"] = _torch_run(torch_op(t), t, tx, tg, tw, tb, backward_too)
    return Case(name, run, _expected(op, with_kernels, host, backward_too), bytes=_traffic(x, backward_too))
