"""The machine a benchmark ran on, and the thread counts of every side of it.

pydl, PyTorch and NumPy's OpenBLAS each keep their own thread pool; :func:`set_threads`
gives all three the same count so that a ratio compares kernels, not core counts.
OpenBLAS is reached through ctypes (its ``openblas_set_num_threads``, under whichever
symbol prefix the NumPy wheel bundles); where that fails NumPy's thread count is reported
as unknown rather than guessed.
"""
import ctypes
import datetime
import os
import platform
import sys

import numpy as np

# Variables of this machine's environment that change which OpenBLAS kernels NumPy runs
# (OPENBLAS_CORETYPE=Haswell forces the AVX2 kernels on an AVX-512 CPU). They are read
# when OpenBLAS loads, so `pydl bench` re-executes itself once without them (cli.py).
DISTORTING_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def caches():
    """Per-core data caches as text, e.g. ``"L1d 48K, L2 1024K, L3 32768K"`` (Linux; else None)."""
    import glob

    parts = []
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(f"{d}/level") as f:
                level = f.read().strip()
            with open(f"{d}/type") as f:
                kind = f.read().strip()
            with open(f"{d}/size") as f:
                size = f.read().strip()
        except OSError:
            continue
        if kind != "Instruction":
            parts.append(f"L{level}{'d' if kind == 'Data' else ''} {size}")
    return ", ".join(parts) or None


class _OpenBLAS:
    """NumPy's OpenBLAS through ctypes, or nothing (``lib`` None) where it is not found."""

    def __init__(self):
        self.lib, self.prefix, self.suffix = None, "", ""
        for path in self._loaded_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix in ("openblas_", "scipy_openblas_"):
                for suffix in ("", "64_", "_64_"):
                    if hasattr(lib, f"{prefix}get_num_threads{suffix}"):
                        self.lib, self.prefix, self.suffix = lib, prefix, suffix
                        return

    @staticmethod
    def _loaded_paths():
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
        except OSError:
            return []
        return sorted(paths)

    def _fn(self, name, restype=ctypes.c_int):
        fn = getattr(self.lib, f"{self.prefix}{name}{self.suffix}", None)
        if fn is not None:
            fn.restype = restype
        return fn

    def get_num_threads(self):
        fn = self.lib and self._fn("get_num_threads")
        return int(fn()) if fn else None

    def set_num_threads(self, n):
        fn = self.lib and self._fn("set_num_threads", None)
        if fn:
            fn.argtypes = [ctypes.c_int]
            fn(int(n))

    def text(self, name):
        fn = self.lib and self._fn(name, ctypes.c_char_p)
        return fn().decode(errors="replace").strip() if fn else None


_openblas = None


def openblas():
    global _openblas
    if _openblas is None:
        _openblas = _OpenBLAS()
    return _openblas


def set_threads(n):
    """Run pydl, torch (when imported) and NumPy's OpenBLAS on ``n`` threads."""
    import pydl

    from .harness import torch

    pydl.set_num_threads(n)
    t = torch()
    if t is not None:
        t.set_num_threads(n)
    openblas().set_num_threads(n)


def impl_threads(impl, blas):
    """The thread count ``impl`` runs with (``blas``: its work is in NumPy's OpenBLAS)."""
    import pydl

    from .harness import torch

    if impl == "pydl":
        return pydl.get_num_threads()
    if impl == "torch":
        t = torch()
        return t.get_num_threads() if t is not None else None
    return openblas().get_num_threads() if blas else 1


def info():
    """The facts printed above the tables and stored under ``"machine"`` in the JSON."""
    import pydl

    from .harness import torch, torch_unavailable_reason

    c = pydl._config.config()
    t = torch()
    ob = openblas()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpus_usable": c["cpus_usable"],
        "caches": caches(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "pydl": c["pydl"],
        "pydl_isa": c["isa"],
        "pydl_isa_best": c["isa_best"],
        "pydl_build": c["build"],
        "pydl_compiler": c["compiler"],
        "pydl_openmp": c["openmp"],
        "pydl_threads": c["threads"],
        "numpy": np.__version__,
        "numpy_blas": ob.text("get_config"),
        "numpy_blas_core": ob.text("get_corename"),
        "numpy_blas_threads": ob.get_num_threads(),
        "torch": t.__version__ if t is not None else None,
        "torch_threads": t.get_num_threads() if t is not None else None,
        "torch_missing": None if t is not None else torch_unavailable_reason(),
        "openblas_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")},
        "openblas_env_removed": list(DISTORTING_ENV) if os.environ.get("PYDL_BENCH_REEXEC") == "done" else [],
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }
