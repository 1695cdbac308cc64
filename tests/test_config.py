import io
import subprocess
import sys

import pytest

import pydl


def test_show_config_names_isa_threads_and_cuda():
    buf = io.StringIO()
    pydl.show_config(file=buf)
    text = buf.getvalue()
    assert text.startswith(f"pydl {pydl.__version__}")
    for word in ("compiler", "isa", "openmp", "threads", "cuda"):
        assert word in text
    c = pydl._config.config()
    assert c["isa"] in ("generic", "avx2", "avx512")
    assert c["cuda"] in ("usable", "built, not usable", "not built")
    if c["cuda"] != "usable":
        assert c["cuda_detail"], "a CUDA backend that cannot run must say why"


def test_set_num_threads_round_trip(threads):
    threads(1)
    assert pydl.get_num_threads() == 1
    threads(3)
    assert pydl.get_num_threads() == 3


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)])
def test_set_num_threads_rejects_bad_values(bad, exc, threads):
    with pytest.raises(exc, match="set_num_threads"):
        pydl.set_num_threads(bad)


def test_environment_picks_threads_and_isa(tmp_path):
    code = "import pydl; print(pydl.get_num_threads(), pydl._C._isa())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={"PYDL_NUM_THREADS": "3", "PYDL_ISA": "generic", "PATH": ""}).stdout.split()
    assert out == ["3", "generic"]


def test_unknown_isa_is_rejected(isa):
    with pytest.raises(ValueError, match="unknown ISA 'sse9'"):
        isa("sse9")


def test_cuda_status_never_raises():
    usable, why = pydl.cuda.status()
    assert isinstance(usable, bool) and isinstance(why, str)
    assert pydl.cuda.is_available() == usable
    if not usable:
        with pytest.raises(RuntimeError, match="cuda kernel backend cannot run here"):
            pydl.kernels.backend("cuda")
