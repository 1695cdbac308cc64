"""The benchmark harness: check every implementation, then time them alternately.

A family module (:mod:`pydl.bench.families`) turns one row of its shape table into a
:class:`Case`: the inputs, already built and reused by every call, a zero-argument callable
per implementation (``pydl``, ``reference``, ``numpy``, ``torch``) and the float64 truth.
:func:`measure` then

1. calls each implementation once and compares its result with the truth -- an
   implementation that raises or returns a wrong result is reported as such and not timed;
2. warms each one up, alternating between them;
3. times them in rounds, one burst of calls of each implementation per round (after a
   pause and an untimed call, see ``SWITCH_PAUSE_S``), the order reversed every other
   round, so that a noisy moment on a shared machine hits every side of the ratio rather
   than one; each keeps its median and min.

The number of timed calls adapts to the cost of a call: about ``budget_s`` seconds per
implementation, between ``MIN_REPEAT`` and ``MAX_REPEAT`` calls, so that the samples of a
fast kernel are spread over a second rather than bunched into one noisy moment; a case
whose calls turn slow mid-way (a busy machine) stops after ``ROUNDS`` rounds once it
has spent ``DEADLINE_FACTOR`` times its budget. A fixed ``repeat`` is honoured exactly.
The garbage collector is off while a case is timed.
"""
import gc
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

IMPLS = ("pydl", "reference", "numpy", "cupy", "torch")
MIN_REPEAT, MAX_REPEAT = 5, 200
DEADLINE_FACTOR = 3.0
# Timed calls come in ROUNDS bursts per implementation. Thread pools spin for a while
# after a call -- OpenBLAS's for ~2^28 cycles (~70 ms), OpenMP's for a shorter time -- and
# a spinning pool of one implementation steals the cores of the next: measured here, it
# halved pydl's 2-thread gemm when calls alternated one by one with NumPy's. So each burst
# starts after a pause and one untimed call that wakes its own pool.
ROUNDS = 5
SWITCH_PAUSE_S = 0.1


class Unavailable(Exception):
    """A family cannot run here (e.g. its pydl kernel is not registered yet)."""


@dataclass
class Case:
    """One benchmarked shape: inputs bound into callables, and the truth to check against.

    run: impl name -> zero-argument callable returning the result (an array, a tensor or
    a tuple of them); expected: zero-argument callable returning the float64 truth with the
    same structure; flops / bytes: work per call (for GFLOP/s and GB/s), None when not
    meaningful; rtol: normwise tolerance, ``max|got - truth| <= rtol * max(1, max|truth|)``
    for every result; blas_impls: the implementations that spend their time in NumPy's BLAS
    (they run on OpenBLAS's threads; other NumPy code runs on one); notes: footnotes.
    """

    name: str
    run: Dict[str, Callable[[], object]]
    expected: Callable[[], object]
    flops: Optional[float] = None
    bytes: Optional[float] = None
    rtol: float = 1e-4
    blas_impls: tuple = ()
    notes: List[str] = field(default_factory=list)


@dataclass
class Result:
    """One (case, implementation) row: the JSON record of ``pydl bench --json``."""

    family: str
    case: str
    impl: str
    median_ms: Optional[float]
    min_ms: Optional[float]
    gflops: Optional[float]
    gbps: Optional[float]
    threads: Optional[int]
    error: Optional[str] = None  # why it was not timed: wrong result, or the exception it raised
    runs: int = 0  # timed calls behind the median (in the table, not the JSON)

    def record(self):
        return {"family": self.family, "case": self.case, "impl": self.impl,
                "median_ms": self.median_ms, "min_ms": self.min_ms, "gflops": self.gflops,
                "gbps": self.gbps, "threads": self.threads, "error": self.error}


# ---------------------------------------------------------------------------------------
# What a family needs from its surroundings
# ---------------------------------------------------------------------------------------

def kernel(op):
    """pydl's cpu kernel ``op``; raises :class:`Unavailable` where it is not registered yet."""
    from .. import kernels

    if op not in kernels.ops("cpu"):
        raise Unavailable(f"kernel {op!r} is not registered in pydl's cpu backend yet")
    return kernels.get(op, "cpu")


def reference_kernel(op):
    """The NumPy reference of ``op``, or None where it is not registered yet."""
    from .. import kernels

    return kernels.get(op, "reference") if op in kernels.ops("reference") else None


_torch = None
_torch_tried = False
_torch_error = None


def torch():
    """The torch module, or None where it cannot be imported (it is never required).

    Imported on first use only, never when pydl or pydl.bench is imported.
    """
    global _torch, _torch_tried, _torch_error
    if not _torch_tried:
        _torch_tried = True
        try:
            import torch as t

            _torch = t
        except Exception as e:  # ImportError, or a broken install
            _torch_error = f"{type(e).__name__}: {e}"
    return _torch


def torch_unavailable_reason():
    torch()
    return _torch_error


# ---------------------------------------------------------------------------------------
# Checking and timing
# ---------------------------------------------------------------------------------------

def to_numpy(x):
    """A float64 NumPy view of an array, a torch tensor, a CuPy array or a scalar."""
    if hasattr(x, "detach"):  # torch
        x = x.detach()
        if x.is_floating_point() and x.element_size() < 4:  # bfloat16 / float16: no NumPy twin
            x = x.float()
        x = x.cpu().numpy()
    elif hasattr(x, "get") and not isinstance(x, np.ndarray):  # cupy
        x = x.get()
    return np.asarray(x, dtype=np.float64)


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check(got, expected, rtol):
    """None when ``got`` matches ``expected`` (normwise, each element of a tuple), else why not."""
    got, expected = _as_tuple(got), _as_tuple(expected)
    if len(got) != len(expected):
        return f"wrong result: {len(got)} outputs, expected {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        what = f"output {i}" if len(expected) > 1 else "result"
        g, e = to_numpy(g), to_numpy(e)
        if g.shape != e.shape:
            return f"wrong result: {what} has shape {g.shape}, expected {e.shape}"
        if e.size == 0:
            continue
        if not np.all(np.isfinite(g) == np.isfinite(e)):
            return f"wrong result: {what} has {np.count_nonzero(~np.isfinite(g))} non-finite values"
        finite = np.isfinite(e)
        err = np.abs(np.where(finite, g - e, 0.0))
        scale = max(1.0, float(np.max(np.abs(np.where(finite, e, 0.0)))))
        worst = np.unravel_index(int(np.argmax(err)), err.shape)
        if err[worst] > rtol * scale:
            return (f"wrong result: {what} differs by {err[worst]:.3g} at index "
                    f"{tuple(int(i) for i in worst)} (got {g[worst]:.6g}, expected {e[worst]:.6g}; "
                    f"allowed {rtol * scale:.3g})")
    return None


def _call_once(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _timed_on_host(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _repeats(seconds_per_call, repeat, budget_s):
    if repeat is not None:
        return repeat
    want = math.ceil(budget_s / max(seconds_per_call, 1e-9))
    return max(MIN_REPEAT, min(MAX_REPEAT, want))


def measure(family, case, *, repeat=None, warmup=2, budget_s=1.0, pause_s=SWITCH_PAUSE_S, device="cpu"):
    """Check, warm up and time every implementation of ``case``; a list of :class:`Result`.

    device "cuda": the callables run on the GPU; each call is timed with CUDA events after a
    synchronize (:func:`pydl.bench.gpu.time_call`), no pause between bursts (no CPU thread
    pools to let go idle), and the threads column stays empty.
    """
    from .machine import impl_threads

    if device == "cuda":
        from .gpu import time_call

        pause_s = 0.0
        threads = {name: None for name in case.run}
    else:
        time_call = _timed_on_host
        threads = {name: impl_threads(name, name in case.blas_impls) for name in case.run}
    impls = [name for name in IMPLS if name in case.run] + [n for n in case.run if n not in IMPLS]
    try:
        expected = case.expected()
    except Exception as e:  # e.g. out of memory building a large truth: this case only, not the run
        return [Result(family, case.name, name, None, None, None, None, threads[name],
                       error=f"computing the truth raised {type(e).__name__}: {e}") for name in impls]
    results = {}
    first_seconds = {}
    for name in impls:
        try:
            got, seconds = _call_once(case.run[name])
            problem = check(got, expected, case.rtol)
        except Exception as e:
            problem = f"raised {type(e).__name__}: {e}"
        if problem is not None:
            results[name] = Result(family, case.name, name, None, None, None, None,
                                   threads[name], error=problem)
        else:
            first_seconds[name] = seconds
    del expected
    timed = [name for name in impls if name in first_seconds]

    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        best = dict(first_seconds)
        for w in range(warmup):
            for name in (timed if w % 2 == 0 else timed[::-1]):
                best[name] = min(best[name], time_call(case.run[name]))
        left = {name: _repeats(best[name], repeat, budget_s) for name in timed}
        burst = {name: max(1, math.ceil(left[name] / ROUNDS)) for name in timed}
        samples = {name: [] for name in timed}
        deadline = time.perf_counter() + DEADLINE_FACTOR * budget_s * len(timed)
        r = 0
        while any(left.values()):
            if repeat is None and r >= ROUNDS and time.perf_counter() > deadline:
                break
            for name in (timed if r % 2 == 0 else timed[::-1]):
                if not left[name]:
                    continue
                time.sleep(pause_s)  # the previous implementation's threads go idle
                case.run[name]()  # untimed: wakes this implementation's threads
                for _ in range(min(burst[name], left[name])):
                    samples[name].append(time_call(case.run[name]))
                    left[name] -= 1
            r += 1
    finally:
        if gc_was_enabled:
            gc.enable()

    for name in timed:
        med = float(np.median(samples[name]))
        results[name] = Result(
            family, case.name, name, median_ms=med * 1e3, min_ms=min(samples[name]) * 1e3,
            gflops=case.flops / med / 1e9 if case.flops else None,
            gbps=case.bytes / med / 1e9 if case.bytes else None,
            threads=threads[name], runs=len(samples[name]))
    return [results[name] for name in impls]
