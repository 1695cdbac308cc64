"""Build and run-time configuration: threads, ISA path, CUDA status."""
import os
import platform
import sys

from . import _C


def set_num_threads(n):
    """Use ``n`` threads in every CPU kernel from now on (also: ``PYDL_NUM_THREADS``)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    """The number of threads the CPU kernels use."""
    return _C.get_num_threads()


def config():
    """The facts ``show_config`` prints, as a dict."""
    from . import cuda

    info = dict(_C.build_info)
    micro = _C._gemm_micro_tile()
    cuda_usable, cuda_why = cuda.status()
    return {
        "pydl": info["version"],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "compiler": info["compiler"],
        "build": "native (-march=native)" if info["native"] else "portable (run-time ISA dispatch)",
        "isa": _C._isa(),
        "isa_best": _C._best_isa(),
        "gemm_micro_tile_f32": f"{micro[0]}x{micro[1]}",
        "openmp": info["openmp"],
        "threads": _C.get_num_threads(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cuda": "usable" if cuda_usable else ("built, not usable" if cuda.built() else "not built"),
        "cuda_detail": cuda_why,
    }


def show_config(file=None):
    """Print the version, compiler, ISA path, threads and CUDA status.

    >>> show_config()  # doctest: +SKIP
    pydl 0.1.0
      compiler        GNU 12.2.0
      ...
    """
    c = config()
    lines = [f"pydl {c['pydl']} (python {c['python']}, {c['platform']})"]
    rows = [
        ("compiler", c["compiler"]),
        ("build", c["build"]),
        ("isa", f"{c['isa']} (best supported: {c['isa_best']}); gemm micro-tile {c['gemm_micro_tile_f32']} (float32)"),
        ("openmp", f"{c['openmp']}; {c['threads']} threads ({c['cpus_usable']} CPUs usable)"),
        ("cuda", f"{c['cuda']}: {c['cuda_detail']}"),
    ]
    lines += [f"  {k:<10} {v}" for k, v in rows]
    print("\n".join(lines), file=file or sys.stdout)
