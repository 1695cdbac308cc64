"""``pydl bench --device cuda``: what a family's GPU cases use, and CUDA-event timing.

A family benchmarks its CUDA kernels by defining, beside ``SHAPES`` / ``QUICK`` /
``case``, the three names below (benchmarks/README.md, "GPU cases", says it with an
example):

- ``CUDA_SHAPES``: its shapes on the GPU (the canonical ones plus the large ones of issue
  8: gemm 4096 and 8192, attention N=4096, nms 100000 boxes);
- ``CUDA_QUICK``: tiny shapes for ``--quick`` (what a test on the GPU machine runs);
- ``cuda_case(shape)``: a :class:`pydl.bench.harness.Case` whose ``pydl`` callable runs
  pydl's CUDA kernel (:func:`kernel`) on CuPy arrays (:func:`to_gpu`) and whose ``torch``
  callable runs PyTorch CUDA (:func:`torch_cuda`) where it is importable; ``expected``
  is the float64 truth on the host, as on the CPU.

A family without ``cuda_case`` is reported as ``no cuda kernel``; ``cuda_case`` raising
:class:`~pydl.bench.harness.Unavailable` (what :func:`kernel` does for an op the cuda
backend lacks) makes that shape unavailable, as on the CPU. The harness checks each
result first (CuPy arrays and torch tensors are copied to the host for that), then
times each call with CUDA events recorded on CuPy's current stream after a device
synchronize (:func:`time_call`), so a kernel's asynchronous launch is not mistaken for
its work. Nothing here imports CuPy or torch before a GPU benchmark runs.
"""
import contextlib

from .harness import Unavailable, torch


def unusable_reason():
    """None when CUDA benchmarks can run here, else why not (no CUDA build, no device, no CuPy)."""
    from .. import cuda

    usable, why = cuda.status()
    return None if usable else why


def cupy():
    import cupy as cp

    return cp


def kernel(op):
    """pydl's cuda kernel ``op``; raises :class:`Unavailable` ("no cuda kernel ...") where it has none."""
    from .. import kernels

    if op not in kernels.ops("cuda"):
        raise Unavailable(f"no cuda kernel {op!r} in pydl's cuda backend yet")
    return kernels.get(op, "cuda")


def to_gpu(*arrays):
    """CuPy copies of NumPy arrays (one array, or a tuple for several)."""
    cp = cupy()
    out = tuple(cp.asarray(a) for a in arrays)
    return out[0] if len(out) == 1 else out


def torch_cuda():
    """The torch module where it is importable and sees a CUDA device, else None."""
    t = torch()
    if t is None or not t.cuda.is_available():
        return None
    return t


def torch_missing_reason():
    from .harness import torch_unavailable_reason

    t = torch()
    if t is None:
        return torch_unavailable_reason()
    return None if t.cuda.is_available() else f"torch {t.__version__} sees no CUDA device"


def time_call(fn):
    """Seconds one call of ``fn`` keeps the GPU busy: CUDA events around it, after a synchronize.

    The events are recorded on CuPy's current stream; PyTorch launches on the legacy
    default stream, which the events (also on it, unless a stream is current) order with,
    so both sides are timed the same way. The launch overhead of the call is included:
    the device is idle when the start event is recorded.
    """
    cp = cupy()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    cp.cuda.Device().synchronize()
    start.record()
    fn()
    end.record()
    end.synchronize()
    return cp.cuda.get_elapsed_time(start, end) / 1e3


def synchronize():
    cupy().cuda.Device().synchronize()


def info():
    """The GPU facts of the header and of ``"machine"`` in the JSON."""
    cp = cupy()
    dev = cp.cuda.Device()
    props = cp.cuda.runtime.getDeviceProperties(dev.id)
    name = props["name"]
    t = torch_cuda()
    return {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "gpu_memory_gib": round(props["totalGlobalMem"] / 2 ** 30, 1),
        "gpu_sm": f"{props['major']}{props['minor']}",
        "cupy": cp.__version__,
        "cuda_runtime": cp.cuda.runtime.runtimeGetVersion(),
        "torch_cuda": t.version.cuda if t is not None else None,
        "torch_cuda_missing": torch_missing_reason(),
    }



@contextlib.contextmanager
def torch_tf32(t, allowed=False):
    """PyTorch's TF32 switches (cuBLAS products, cuDNN convolutions) set to ``allowed`` inside
    the block: PyTorch lets cuDNN round float32 convolutions to TF32 by default, which would
    compare pydl's float32 kernels with lower-precision work."""
    was = (t.backends.cuda.matmul.allow_tf32, t.backends.cudnn.allow_tf32)
    t.backends.cuda.matmul.allow_tf32 = t.backends.cudnn.allow_tf32 = allowed
    try:
        yield
    finally:
        t.backends.cuda.matmul.allow_tf32, t.backends.cudnn.allow_tf32 = was
