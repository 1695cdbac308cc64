#!/usr/bin/env bash
# gpu_check.sh: verify pydl's CUDA backend on a GPU machine in one command.
#
#   bash benchmarks/gpu_check.sh [PHASE ...]      PHASE: env build test bench quick (default: all of them but quick)
#
# Phases, each logged into $OUT (or /tmp/pydl-gpu-check where OUT is unset):
#   env    nvidia-smi, nvcc, python, CuPy, PyTorch                           -> env.txt
#   build  pip install --no-build-isolation --no-deps . with PYDL_CUDA=ON
#          (a build that cannot find nvcc fails loudly), then `pydl config`
#          and the ops of the cuda backend                                   -> build.log
#   test   python -P -m pytest -m cuda -ra tests (every GPU-marked test: kernel
#          parity of the cuda backend, GPU tensors, LeNet5 step, Trainer,
#          bench on the device)                                              -> pytest.log, pytest.xml
#   bench  pydl bench --device cuda (every family; one without GPU cases says
#          "no cuda kernel"), PyTorch CUDA as the peer                       -> bench.md, bench.json
#   quick  pydl bench --device cuda --quick (seconds: checks the GPU cases run)
# and summary.txt: one line per phase with its exit status and duration.
#
# Made for the device tool's machines (see /work/.library/device/README.md: Python 3.12
# with CuPy, PyTorch, pybind11, scikit-build-core, cmake and nvcc; no network):
#   run(command="bash benchmarks/gpu_check.sh", timeout_s=600)
# Each phase has its own time limit (GPU_CHECK_<PHASE>_S), cut to what is left of
# GPU_CHECK_TOTAL_S (default 570 s, inside one 10-minute call); a phase with no time left is
# skipped and says so. The bench prints its tables family by family, so a bench cut short
# keeps what it measured (bench.md; bench.json is written at its end). For the full bench
# a second call within the machine's warm period reuses the installed build:
# `bash benchmarks/gpu_check.sh bench`.
# CUDAARCHS (default 90: the H100/H200) picks the architectures built; PYTHON the
# interpreter (default python3). Exit status: 0 when every phase run passed, else 1.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/pydl-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 CUDAARCHS=${CUDAARCHS:-90} PYDL_CUDA=ON
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
phases=("$@")
[ ${#phases[@]} -eq 0 ] && phases=(env build test bench)
failed=0
deadline=$(( $(date +%s) + ${GPU_CHECK_TOTAL_S:-570} ))

# run_phase NAME LIMIT_S LOG COMMAND: the command (a shell line; the functions below are
# exported) run under a time limit, its output into LOG, a line into summary.txt
run_phase() {
    local name=$1 limit=$2 log=$3 start rc
    shift 3
    start=$(date +%s)
    echo "== $name: $*" | tee -a "$OUT/summary.txt"
    (( limit > deadline - start - 5 )) && limit=$(( deadline - start - 5 ))
    if (( limit < 20 )); then
        echo "   $name: SKIPPED, no time left (run: bash benchmarks/gpu_check.sh $name)" | tee -a "$OUT/summary.txt"
        failed=1
        return 1
    fi
    timeout --kill-after=10 "$limit" bash -c "$*" >"$OUT/$log" 2>&1
    rc=$?
    [ $rc -eq 124 ] && echo "   (stopped at its limit of ${limit} s)" | tee -a "$OUT/summary.txt"
    echo "   $name: exit $rc after $(( $(date +%s) - start )) s; log $log" | tee -a "$OUT/summary.txt"
    tail -n 5 "$OUT/$log"
    [ $rc -eq 0 ] || failed=1
    return $rc
}

env_report() {
    nvidia-smi || true
    nvcc --version || true
    "$PY" - <<'EOF'
import sys
print("python", sys.version)
for name in ("numpy", "cupy", "torch", "torchvision", "pybind11", "scikit_build_core"):
    try:
        mod = __import__(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as e:  # noqa: BLE001 - reported, not fatal
        print(name, "NOT IMPORTABLE:", type(e).__name__, e)
try:
    import torch
    print("torch cuda", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as e:  # noqa: BLE001
    print("torch cuda: ", e)
EOF
}

build() {
    "$PY" -m pip install -v --no-build-isolation --no-deps . -Cbuild-dir=build/gpu-check || return 1
    cd /tmp || return 1
    "$PY" -c "import pydl; pydl.show_config()" || return 1
    "$PY" - <<'EOF'
import pydl, pydl.cuda, pydl.kernels
usable, why = pydl.cuda.status()
print("pydl.cuda.status():", usable, why)
print("cuda ops:", ", ".join(pydl.kernels.ops("cuda")))
raise SystemExit(0 if usable else 1)
EOF
}

export OUT PY
export -f env_report build
for phase in "${phases[@]}"; do
    case $phase in
        env)   run_phase env 60 env.txt env_report ;;
        build) run_phase build "${GPU_CHECK_BUILD_S:-330}" build.log build ;;
        test)  # a hung kernel fails its test (pytest-timeout, where installed) instead of the whole phase
               per_test=""
               "$PY" -c "import pytest_timeout" 2>/dev/null && per_test="--timeout=${GPU_CHECK_PER_TEST_S:-120}"
               run_phase test "${GPU_CHECK_TEST_S:-240}" pytest.log \
                   '"$PY" -P -m pytest -m cuda -ra -q -p no:cacheprovider --durations=15 '"$per_test"' \
                   --junitxml="$OUT/pytest.xml" tests' ;;
        bench) run_phase bench "${GPU_CHECK_BENCH_S:-570}" bench.md \
                   '"$PY" -P -m pydl.cli bench --device cuda --json "$OUT/bench.json"' ;;
        quick) run_phase quick 120 bench-quick.md '"$PY" -P -m pydl.cli bench --device cuda --quick' ;;
        *) echo "gpu_check.sh: unknown phase '$phase' (env, build, test, bench, quick)" >&2; exit 2 ;;
    esac
done
[ -f "$OUT/pytest.log" ] && tail -n 1 "$OUT/pytest.log" | sed 's/^/pytest summary: /' | tee -a "$OUT/summary.txt"
exit $failed
