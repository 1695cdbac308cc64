"""The generative examples run end to end (reduced) and write their PNGs (needs scikit-learn for Digits)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("script, extra, pngs", [
    ("vae_digits.py", ["--quick"], ["vae_samples.png", "vae_reconstructions.png", "vae_interpolation.png"]),
    ("ddpm_digits.py", ["--steps", "3"], ["ddpm_samples.png", "ddim_samples.png", "ddpm_chain.png"]),
])
def test_example_writes_pngs(tmp_path, script, extra, pngs):
    pytest.importorskip("sklearn")
    env = dict(os.environ, PYDL_NUM_THREADS="1")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), str(tmp_path), *extra],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in pngs:
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
