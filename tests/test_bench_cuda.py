"""`pydl bench --device cuda`: the refusal without CUDA, the routing to the families' GPU
cases, and (marked cuda, on a GPU) a real quick run. Never timings."""
import json
import sys
import types

import numpy as np
import pytest

import pydl
from pydl.bench import Case, gpu, harness
from pydl.bench.families import FAMILIES
from pydl.cli import main

USABLE, WHY = pydl.cuda.status()


def needs_gpu(test):
    return pytest.mark.cuda(pytest.mark.skipif(not USABLE, reason=WHY)(test))


@pytest.mark.skipif(USABLE, reason="CUDA can run here: the refusal path is not taken")
def test_device_cuda_without_cuda_says_why_and_exits_2(capsys, tmp_path):
    out = tmp_path / "never.json"
    assert main(["bench", "gemm", "--device", "cuda", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert "pydl bench --device cuda cannot run here: " in err
    assert WHY in err
    assert not out.exists()


def test_unknown_device_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "gemm", "--device", "tpu"])
    assert e.value.code == 2
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        pydl.bench.run(["gemm"], device="gpu")


def test_gpu_kernel_is_unavailable_for_an_op_without_a_cuda_kernel():
    with pytest.raises(harness.Unavailable, match="no cuda kernel 'no_such_kernel'"):
        gpu.kernel("no_such_kernel")


def fake_family(monkeypatch, name, with_cuda):
    """A family whose CPU case would fail, so a pass shows the GPU case was the one run."""
    module = types.ModuleType(f"fake_{name}")
    module.SHAPES = module.QUICK = [(4, 3)]
    module.case = lambda shape: (_ for _ in ()).throw(AssertionError("the CPU case was run"))
    if with_cuda:
        module.CUDA_SHAPES = [(1000, 1000)]
        module.CUDA_QUICK = [(5, 2)]

        def cuda_case(shape):
            x = np.ones(shape, dtype=np.float32)
            return Case(f"gpu {shape[0]}x{shape[1]}", {"pydl": lambda: x * 2, "torch": lambda: x + x},
                        expected=lambda: np.full(shape, 2.0))
        module.cuda_case = cuda_case
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FAMILIES, f"fake_{name}", module.__name__)
    return f"fake_{name}"


def test_device_cuda_runs_the_gpu_cases_and_names_families_without_them(monkeypatch, tmp_path, capsys):
    # The GPU itself is replaced (availability, device facts, the event timer) so that the
    # harness's choice of shapes, cases, timer and report is exercised on this machine.
    timer_calls = []

    def host_timer(fn):
        timer_calls.append(fn)
        return harness._timed_on_host(fn)

    monkeypatch.setattr(gpu, "unusable_reason", lambda: None)
    monkeypatch.setattr(gpu, "time_call", host_timer)
    monkeypatch.setattr(gpu, "info", lambda: {"gpu": "FakeGPU", "gpu_sm": "90", "gpu_memory_gib": 1.0,
                                              "cupy": "0", "cuda_runtime": 0, "torch_cuda": None,
                                              "torch_cuda_missing": "no torch"})
    with_cases = fake_family(monkeypatch, "gpu", True)
    without = fake_family(monkeypatch, "cpu_only", False)
    out = tmp_path / "gpu.json"
    assert main(["bench", with_cases, without, "--device", "cuda", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| gpu | FakeGPU (sm 90, 1.0 GiB)" in text and "CUDA events" in text
    assert f"## {without}\n\nnot available: no cuda kernel" in text
    data = json.loads(out.read_text())
    assert data["machine"]["device"] == "cuda" and data["machine"]["gpu"] == "FakeGPU"
    rows = data["results"]
    assert {r["case"] for r in rows} == {"gpu 5x2"}  # CUDA_QUICK, not QUICK
    assert {r["impl"] for r in rows} == {"pydl", "torch"}
    assert all(r["error"] is None and r["threads"] is None and r["median_ms"] > 0 for r in rows)
    assert len(timer_calls) == 2 * 2  # every timed call went through the GPU timer (2 impls x 2 calls)


def test_a_truth_that_raises_fails_its_case_not_the_run(monkeypatch, capsys):
    def case(shape):
        x = np.ones(3, dtype=np.float32)
        return Case("3", {"pydl": lambda: x}, expected=lambda: np.ones((1 << 62,)))  # cannot be allocated

    module = types.ModuleType("fake_truthless")
    module.SHAPES = module.QUICK = [3]
    module.case = case
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(FAMILIES, "fake_truthless", module.__name__)
    assert main(["bench", "fake_truthless", "gemm", "--quick"]) == 1
    text = capsys.readouterr().out
    assert "computing the truth raised" in text and "| 33x17x9 | pydl |" in text


def test_every_family_with_gpu_cases_declares_its_shapes():
    for name in FAMILIES:
        mod = __import__(FAMILIES[name], fromlist=["_"])
        if hasattr(mod, "cuda_case"):
            assert mod.CUDA_SHAPES and mod.CUDA_QUICK, name


@needs_gpu
def test_quick_gpu_run_of_gemm_on_the_device(tmp_path, capsys):
    out = tmp_path / "gemm-cuda.json"
    assert main(["bench", "gemm", "--device", "cuda", "--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["machine"]["device"] == "cuda" and data["machine"]["gpu"]
    rows = [r for r in data["results"] if r["impl"] == "pydl"]
    assert {r["case"] for r in rows} == {"33x17x9", "3x(8x7@7x5)"}
    assert all(r["error"] is None and r["median_ms"] > 0 for r in data["results"])


@needs_gpu
def test_device_cuda_quick_run_of_every_family_never_fails_for_a_missing_kernel(capsys):
    assert main(["bench", "--device", "cuda", "--quick"]) == 0
    text = capsys.readouterr().out
    for family in FAMILIES:
        assert f"## {family}" in text
