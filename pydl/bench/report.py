"""What a benchmark run prints (markdown) and writes (JSON)."""
import json
import os
import tempfile


def _ms(x):
    """Four significant digits, trailing zeros kept (1.000, 16.00, 0.08290)."""
    return f"{x:.0f}" if x >= 1000 else f"{x:#.4g}".rstrip(".")


def _fmt(x):
    if x is None:
        return ""
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def header(m, timing):
    """The markdown block above the tables: machine, pydl, NumPy, torch, date, method."""
    torch = (f"{m['torch']}, {m['torch_threads']} threads" if m["torch"]
             else f"not importable ({m['torch_missing']}): no torch rows")
    blas = m["numpy_blas"] or "BLAS not identified"
    core = f", core {m['numpy_blas_core']}" if m["numpy_blas_core"] else ""
    blas_threads = m["numpy_blas_threads"] if m["numpy_blas_threads"] is not None else "?"
    rows = [
        ("machine", f"{m['cpu']}, {m['cores']} cores ({m['cpus_usable']} usable)"
                    + (f", caches {m['caches']}" if m.get("caches") else "") + f", {m['platform']}"),
        ("pydl", f"{m['pydl']}: ISA path {m['pydl_isa']} (best supported {m['pydl_isa_best']}), "
                 f"{m['pydl_build']}, {m['pydl_compiler']}, OpenMP {m['pydl_openmp']}, "
                 f"{m['pydl_threads']} threads"),
        ("numpy", f"{m['numpy']}, {blas}{core}, {blas_threads} threads"),
        ("torch", torch),
    ]
    if m.get("device") == "cuda":
        rows.append(("gpu", f"{m['gpu']} (sm {m['gpu_sm']}, {m['gpu_memory_gib']} GiB), CuPy {m['cupy']}, "
                            f"CUDA runtime {m['cuda_runtime']}; torch CUDA "
                            + (m["torch_cuda"] or f"not usable ({m['torch_cuda_missing']}): no torch rows")))
    rows += [
        ("date", m["date"]),
        ("timing", timing),
    ]
    env = m.get("openblas_env") or {}
    removed = m.get("openblas_env_removed") or []
    notes = []
    if removed:
        notes.append(f"re-executed without {', '.join(removed)} (they change which OpenBLAS kernels NumPy runs)")
    if env:
        distorting = [k for k in env if k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")]
        notes.append(", ".join(f"{k}={v}" for k, v in env.items())
                     + (" (set: NumPy's timings are distorted; see benchmarks/README.md)" if distorting else ""))
    if notes:
        rows.append(("environment", "; ".join(notes)))
    lines = ["# pydl bench", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def unavailable(family, why):
    return f"## {family}\n\nnot available: {why}\n"


def family_table(family, results, notes):
    """One family's markdown table; ratio = other's median / pydl's median of the same case."""
    show_gflops = any(r.gflops is not None for r in results)
    show_gbps = any(r.gbps is not None for r in results)
    cols = ["case", "impl", "median ms", "min ms"]
    cols += ["GFLOP/s"] * show_gflops + ["GB/s"] * show_gbps + ["threads", "runs", "other/pydl", "by min"]
    lines = [f"## {family}", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    pydl_row = {r.case: r for r in results if r.impl == "pydl" and r.error is None}
    problems = []
    last_case = None
    for r in results:
        if r.error is not None:
            problems.append(f"{r.impl} at {r.case}: {r.error}")
            timing = ["**not timed**: " + r.error.split(":")[0], ""]
        else:
            timing = [_ms(r.median_ms), _ms(r.min_ms)]
        base = pydl_row.get(r.case)
        if r.impl == "pydl" or r.error is not None or base is None:
            ratio = ["", ""]
        else:
            ratio = [f"{r.median_ms / base.median_ms:.2f}", f"{r.min_ms / base.min_ms:.2f}"]
        cells = [r.case if r.case != last_case else "", r.impl] + timing
        cells += [_fmt(r.gflops)] * show_gflops + [_fmt(r.gbps)] * show_gbps
        cells += ["" if r.threads is None else str(r.threads), str(r.runs) if r.runs else ""] + ratio
        lines.append("| " + " | ".join(cells) + " |")
        last_case = r.case
    lines.append("")
    lines.append("- other/pydl = the other implementation's median time / pydl's: above 1 means pydl is faster; "
                 "by min = the same with the fastest calls (less sensitive to a busy machine, which only adds time).")
    lines += [f"- {note}" for note in dict.fromkeys(notes)]
    lines += [f"- **{p}**" for p in problems]
    return "\n".join(lines) + "\n"


def write_json(path, machine, results):
    """Write ``{"machine": ..., "results": [...]}`` to ``path`` atomically (temp file + rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pydl-bench-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"machine": machine, "results": [r.record() for r in results]}, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
