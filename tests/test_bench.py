"""`pydl bench` and its harness in --quick mode: schema, checking, CLI. Never timings."""
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pydl
from pydl.bench import Case, Unavailable, harness, machine
from pydl.bench.families import FAMILIES
from pydl.cli import main

RESULT_KEYS = {"family", "case", "impl", "median_ms", "min_ms", "gflops", "gbps", "threads", "error"}
IMPLS = {"pydl", "reference", "numpy", "torch"}


def read_json(path):
    data = json.loads(Path(path).read_text())
    assert set(data) == {"machine", "results"}
    for key in ("cpu", "cores", "pydl_isa", "pydl_threads", "numpy", "torch", "torch_threads", "date"):
        assert key in data["machine"], key
    for row in data["results"]:
        assert set(row) == RESULT_KEYS, row
        assert row["impl"] in IMPLS
        assert row["family"] in FAMILIES or row["family"].startswith("fake")
    return data


def timed(row):
    return (row["error"] is None and row["median_ms"] > 0 and row["min_ms"] > 0
            and row["min_ms"] <= row["median_ms"] and isinstance(row["threads"], int))


def test_quick_gemm_writes_the_json_schema(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "gemm", "--quick", "--json", str(out)]) == 0
    rows = read_json(out)["results"]
    assert {r["impl"] for r in rows} >= {"pydl", "reference", "numpy"}
    for row in rows:
        assert row["family"] == "gemm"
        assert timed(row), row
        assert row["gflops"] > 0 and row["gbps"] is None
    assert {r["case"] for r in rows} == {"33x17x9", "3x(8x7@7x5)"}
    text = capsys.readouterr().out
    assert "## gemm" in text and "| case | impl | median ms |" in text and "other/pydl" in text
    assert f"ISA path {pydl._C._isa()}" in text


def test_quick_run_of_every_family(tmp_path, capsys):
    out = tmp_path / "all.json"
    assert main(["bench", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for family in FAMILIES:
        # a family whose kernel is not registered yet says so instead of failing
        assert f"## {family}" in text
    for row in read_json(out)["results"]:
        assert timed(row), row
        if row["family"] in ("softmax", "cross_entropy"):
            assert row["gbps"] > 0 and row["gflops"] is None


def test_threads_are_applied_and_reported(tmp_path, threads):
    out = tmp_path / "t.json"
    try:
        assert main(["bench", "gemm", "--quick", "--threads", "1", "--json", str(out)]) == 0
        data = read_json(out)
        assert data["machine"]["pydl_threads"] == 1
        assert all(r["threads"] == 1 for r in data["results"] if r["impl"] in ("pydl", "torch"))
    finally:
        threads(2 if pydl.get_num_threads() == 1 else pydl.get_num_threads())
        machine.set_threads(pydl.get_num_threads())


def fake_family(monkeypatch, name, case):
    module = types.ModuleType(f"fake_{name}")
    module.SHAPES = module.QUICK = [(4, 3)]
    module.case = case
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FAMILIES, f"fake_{name}", module.__name__)
    return f"fake_{name}"


def two_impls(pydl_impl):
    def case(shape):
        x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
        return Case("4x3", {"pydl": lambda: pydl_impl(x), "numpy": lambda: x * 2},
                    expected=lambda: x.astype(np.float64) * 2, flops=float(x.size))
    return case


@pytest.mark.parametrize("bad, message", [
    (lambda x: x * 2 + 1, "wrong result: result differs by"),
    (lambda x: (x * 2)[:, :2], "wrong result: result has shape (4, 2)"),
    (lambda x: np.full_like(x, np.nan), "non-finite"),
    (lambda x: (x * 2, x), "wrong result: 2 outputs, expected 1"),
    (lambda x: np.sqrt("x"), "raised"),
])
def test_a_wrong_result_is_flagged_not_timed(monkeypatch, tmp_path, capsys, bad, message):
    name = fake_family(monkeypatch, "wrong", two_impls(bad))
    out = tmp_path / "wrong.json"
    assert main(["bench", name, "--quick", "--json", str(out)]) == 1
    rows = {r["impl"]: r for r in read_json(out)["results"]}
    assert rows["pydl"]["median_ms"] is None and rows["pydl"]["min_ms"] is None
    assert message in rows["pydl"]["error"]
    assert timed(rows["numpy"])
    text = capsys.readouterr().out
    assert "**not timed**" in text and message in text


def test_a_right_fake_family_passes(monkeypatch, capsys):
    name = fake_family(monkeypatch, "right", two_impls(lambda x: x + x))
    assert main(["bench", name, "--quick"]) == 0
    assert "| 4x3 | pydl |" in capsys.readouterr().out


def test_a_missing_kernel_makes_the_family_unavailable(monkeypatch, tmp_path, capsys):
    def case(shape):
        harness.kernel("no_such_kernel_yet")

    name = fake_family(monkeypatch, "missing", case)
    out = tmp_path / "missing.json"
    assert main(["bench", name, "--quick", "--json", str(out)]) == 0
    assert "not available: kernel 'no_such_kernel_yet' is not registered" in capsys.readouterr().out
    assert read_json(out)["results"] == []


def test_a_broken_family_module_is_reported(monkeypatch, capsys):
    def case(shape):
        raise KeyError("oops")

    name = fake_family(monkeypatch, "broken", case)
    assert main(["bench", name, "gemm", "--quick"]) == 1
    text = capsys.readouterr().out
    assert "raised KeyError: 'oops'" in text and "| 33x17x9 | pydl |" in text


def test_kernel_raises_unavailable_for_an_unknown_op():
    with pytest.raises(Unavailable, match="not registered"):
        harness.kernel("no_such_kernel_yet")


def test_check_is_normwise_per_output():
    ref = np.array([[1.0, 2.0], [3.0, 1e3]])
    assert harness.check(ref.astype(np.float32), ref, 1e-4) is None
    assert harness.check((ref, 1.0), (ref, 1.0), 1e-4) is None
    assert "output 1" in harness.check((ref, 1.5), (ref, 1.0), 1e-4)
    assert harness.check(ref + 1e-3, ref, 1e-4) is None  # 1e-3 <= 1e-4 * 1e3
    assert harness.check(ref + 1.0, ref, 1e-4) is not None


@pytest.mark.parametrize("argv", [["bench", "nope"], ["bench", "--repeat", "0"], ["bench", "--threads", "x"], [],
                                  ["bench", "--json", "/nonexistent-dir/x.json"], ["bench", "--json", "/"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2


def run_pydl(args, tmp_path, env=None):
    """`pydl ARGS` through the console script next to this Python, else `python -m pydl.cli`."""
    script = Path(sys.executable).parent / "pydl"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "pydl.cli"]
    return subprocess.run(cmd + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_python_dash_m_reexecutes_without_openblas_overrides(tmp_path):
    out = tmp_path / "m.json"
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="512")
    env.pop("PYDL_BENCH_REEXEC", None)
    p = subprocess.run([sys.executable, "-m", "pydl.cli", "bench", "gemm", "--quick", "--json", str(out)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = read_json(out)["machine"]
    if sys.version_info >= (3, 10) and os.name == "posix":
        assert "OPENBLAS_CORETYPE" not in m["openblas_env"] and "OPENBLAS_L2_SIZE" not in m["openblas_env"]
        assert m["openblas_env_removed"] == ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"]
        assert "re-executed without OPENBLAS_CORETYPE" in p.stdout


def test_reexec_can_be_turned_off(tmp_path):
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell", PYDL_BENCH_REEXEC="no")
    p = run_pydl(["bench", "gemm", "--quick"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    assert "OPENBLAS_CORETYPE=Haswell" in p.stdout and "NumPy's timings are distorted" in p.stdout


def test_config_command(tmp_path):
    p = run_pydl(["config"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("pydl ") and "isa" in p.stdout


def test_importing_pydl_and_its_cli_does_not_import_torch(tmp_path):
    code = "import sys, pydl, pydl.cli, pydl.bench, pydl.bench.families.gemm; print('torch' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
