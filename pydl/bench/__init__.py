"""``pydl bench``: pydl's kernels against the NumPy reference, NumPy and PyTorch.

Each family (:mod:`pydl.bench.families`) is measured at DESIGN.md's canonical shapes by
the harness (:mod:`pydl.bench.harness`): every implementation is checked against the
float64 truth first, then all are timed alternately, median and min of repeated calls
after warm-up, on the same thread count. The result is a markdown table on stdout and,
with ``json_path``, ``{"machine": {...}, "results": [...]}`` for comparing commits.

PyTorch is optional: its rows appear when ``import torch`` works, and it is imported only
when a benchmark runs.
"""
import sys

from . import families as _families
from . import gpu, harness, machine, report
from .harness import Case, Unavailable

__all__ = ["Case", "Unavailable", "run"]


def _progress(text):
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()


def run(names=None, *, repeat=None, threads=None, quick=False, json_path=None, out=None,
        budget_s=1.0, warmup=2, device="cpu"):
    """Benchmark the families ``names`` (all registered when empty); 0 if every check passed.

    names: family names or family modules; repeat: timed calls per implementation (default:
    about ``budget_s`` seconds' worth, 5 to 200); threads: for pydl, torch and NumPy's OpenBLAS
    alike (default: pydl's current count); quick: the tiny ``QUICK`` shapes, 2 calls, no
    warm-up beyond the checking call (for tests). Returns 1 when an implementation gave a
    wrong result or raised (it is reported in the table and the JSON, not timed).
    device: "cpu", or "cuda" for the families' GPU cases (:mod:`pydl.bench.gpu`; a family
    without them is reported as "no cuda kernel"); returns 2 after printing why on stderr
    when CUDA cannot run here (no CUDA build, no device or no CuPy).
    """
    import pydl

    if device not in ("cpu", "cuda"):
        raise ValueError(f"pydl bench: device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        why = gpu.unusable_reason()
        if why is not None:
            print(f"pydl bench --device cuda cannot run here: {why}", file=sys.stderr, flush=True)
            return 2
    on_gpu = device == "cuda"
    out = out or sys.stdout
    chosen = {}
    for n in names or list(_families.FAMILIES):
        if isinstance(n, str):
            chosen[n] = _families.load(n)
        else:
            chosen[n.__name__.rsplit(".", 1)[-1]] = n
    pause_s = 0.0 if on_gpu else harness.SWITCH_PAUSE_S
    if quick:
        repeat = 2 if repeat is None else repeat
        warmup = 0
        pause_s = 0.0
    machine.set_threads(pydl.get_num_threads() if threads is None else threads)

    info = machine.info()
    calls = (f"{repeat} calls" if repeat is not None else
             f"{harness.MIN_REPEAT}-{harness.MAX_REPEAT} calls (about {budget_s:g} s; `runs` column)")
    timing = (f"median and min of {calls} per implementation after 1 checking call and {warmup} warm-up "
              f"call{'s' * (warmup != 1)}; implementations alternated in {harness.ROUNDS} rounds of bursts, "
              f"each burst after a {pause_s:g} s pause and one untimed call, order reversed every other round; GC off while timing; threads = the count each library was set to (a kernel "
              f"may use fewer on a small input)" + ("; --quick: tiny shapes" if quick else ""))
    if on_gpu:
        timing = ("each GPU call timed with CUDA events recorded on CuPy's current stream after a device "
                  "synchronize (launch overhead included); " + timing.split("; threads =")[0]
                  + ("; --quick: tiny shapes" if quick else ""))
    info.update(repeat=repeat, warmup=warmup, quick=quick, timing=timing, device=device)
    if on_gpu:
        info.update(gpu.info())
    print(report.header(info, timing), file=out, flush=True)

    results, failed = [], False
    for family, mod in chosen.items():
        family_results, notes, missing, broken = [], [], [], []
        if on_gpu and not hasattr(mod, "cuda_case"):
            print(report.unavailable(family, "no cuda kernel (the family has no cuda_case)"), file=out, flush=True)
            continue
        shapes = (mod.CUDA_QUICK if quick else mod.CUDA_SHAPES) if on_gpu else (mod.QUICK if quick else mod.SHAPES)
        make_case = mod.cuda_case if on_gpu else mod.case
        for shape in shapes:
            try:
                case = make_case(shape)
            except Unavailable as e:
                missing.append(str(e))
                continue
            except Exception as e:  # a bug in the family module: report it, run the others
                broken.append(f"building the case for shape {shape} raised {type(e).__name__}: {e}")
                continue
            _progress(f"pydl bench: {family} {case.name} ...")
            family_results += harness.measure(family, case, repeat=repeat, warmup=warmup, budget_s=budget_s,
                                              pause_s=pause_s, device=device)
            notes += case.notes
        _progress("")
        missing = list(dict.fromkeys(missing))
        failed |= bool(broken) or any(r.error is not None for r in family_results)
        if not family_results:
            why = "; ".join(broken + missing) or "no shapes"
            print(report.unavailable(family, why), file=out, flush=True)
            continue
        results += family_results
        notes += [f"not available for some cases: {m}" for m in missing]
        notes += [f"**{b}**" for b in broken]
        print(report.family_table(family, family_results, notes), file=out, flush=True)

    if json_path is not None:
        report.write_json(json_path, info, results)
    return 1 if failed else 0
