#!/usr/bin/env bash
# The GPU session's one script: build and install labelsift on the GPU
# machine, run the `gpu` tests, run the GPU benchmark; everything under $OUT.
#
#   bash bench/gpu_check.sh            # $OUT set by the device tool (default ./gpu_out)
#   STEPS="env build info sk_tests sk_bench" bash bench/gpu_check.sh   # only the named steps
#     (sk_tests / knn_tests / noise_tests = tests/gpu/test_cuda_{sinkhorn,knn,noise}.py alone;
#      in a full run gpu_tests covers them)
#
# Each step has its own timeout, shortened so that all of them together stay
# under TOTAL_BUDGET seconds (default 500); a step that fails or times out is
# recorded and the next one still runs. $OUT/summary.txt lists every step
# with its exit code (124: timed out) and seconds.
set -u
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$REPO/gpu_out}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
TOTAL_BUDGET="${TOTAL_BUDGET:-500}"
T0=$(date +%s)
PY="${PYTHON:-python3}"

# step NAME TIMEOUT CMD...  -- runs CMD with min(TIMEOUT, what is left), output in $OUT/NAME.log
STEPS="${STEPS:-}"
OPTIONAL_STEPS="sk_tests knn_tests noise_tests"  # run only when named in STEPS (gpu_tests already covers them)
step() {
  local name=$1 limit=$2
  shift 2
  if [[ -n "$STEPS" && " $STEPS " != *" $name "* ]]; then return 0; fi
  if [[ -z "$STEPS" && " $OPTIONAL_STEPS " == *" $name "* ]]; then return 0; fi
  local left=$(( TOTAL_BUDGET - ($(date +%s) - T0) ))
  if (( left < limit )); then limit=$left; fi
  if (( limit < 5 )); then
    echo "$name: SKIPPED (time budget spent)" | tee -a "$SUMMARY"
    return 0
  fi
  local s=$(date +%s)
  # the steps are shell functions: run them in a child bash (exported below)
  timeout --kill-after=5 "$limit" bash -c "$*" > "$OUT/$name.log" 2>&1
  local rc=$?
  local status=ok
  (( rc == 124 || rc == 137 )) && status="TIMED OUT after ${limit}s"
  (( rc != 0 && rc != 124 && rc != 137 )) && status=FAILED
  echo "$name: $status (rc=$rc, $(( $(date +%s) - s ))s, log $name.log)" | tee -a "$SUMMARY"
  tail -n 5 "$OUT/$name.log" | sed 's/^/    /'
  return 0
}

env_report() {
  echo "== date"; date -u
  echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv 2>&1 || echo "nvidia-smi not found"
  echo "== python"; "$PY" --version
  echo "== nvcc"; (command -v nvcc || ls /usr/local/cuda/bin/nvcc) 2>&1; (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>&1 | tail -n 2
  echo "== cmake"; (cmake --version 2>&1 | head -n 1) || echo "cmake: MISSING"
  echo "== python packages (build needs numpy, pybind11, scikit_build_core; tests pytest; bench torch; optional cupy)"
  for m in numpy pybind11 scikit_build_core pytest torch cupy hypothesis; do
    "$PY" - "$m" <<'PYEOF'
import importlib, sys
m = sys.argv[1]
try:
    mod = importlib.import_module(m)
    extra = ""
    if m == "torch":
        extra = f" cuda={mod.cuda.is_available()} torch.version.cuda={mod.version.cuda}"
    print(f"{m}: {getattr(mod, '__version__', '?')}{extra}")
except Exception as exc:
    print(f"{m}: MISSING ({type(exc).__name__}: {exc})")
PYEOF
  done
  echo "== CPUs"; nproc
}

build() {
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
  cd "$REPO" && "$PY" -m pip install --no-build-isolation --no-deps -v . && \
    cd /tmp && "$PY" -c "import labelsift, labelsift._cuda; print('installed', labelsift.__file__)"
}

info() {
  cd /tmp && "$PY" -c "import json, labelsift; print(json.dumps(labelsift.backend_info(), indent=2))"
}

gpu_tests() {  # its output is $OUT/gpu_tests.log (the step's log)
  cd /tmp && "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs --maxfail=25 \
    "$REPO/tests/gpu" "$REPO/tests/common/test_backend.py" "$REPO/tests/common/test_cuda_arrays.py"
}

sk_tests() {  # issue 12: the CUDA Sinkhorn against the CPU (also part of gpu_tests)
  cd /tmp && "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs --maxfail=10 "$REPO/tests/gpu/test_cuda_sinkhorn.py"
}

sk_bench() {  # issue 12: 1.28M x 3000 pass vs one read of S; swav_codes vs SwAV's loop
  cd /tmp && "$PY" "$REPO/bench/bench_gpu_sinkhorn.py" --out "$OUT/gpu_sinkhorn.json" --budget 80
}

knn_tests() {  # issue 12: the CUDA k-NN search against the CPU (also part of gpu_tests)
  cd /tmp && "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs --maxfail=10 "$REPO/tests/gpu/test_cuda_knn.py"
}

knn_bench() {  # issue 12: 1.28M x 512 k=10 cosine vs torch mm+topk and the bf16 tensor-core floor
  cd /tmp && "$PY" "$REPO/bench/bench_gpu_knn.py" --out "$OUT/gpu_knn.json" --budget 140
}

noise_tests() {  # issue 12: HOC / SimiFeat on CUDA features against the CPU (also part of gpu_tests)
  cd /tmp && "$PY" -m pytest -m gpu -q -p no:cacheprovider -rs --maxfail=10 "$REPO/tests/gpu/test_cuda_noise.py"
}

noise_bench() {  # issue 12: HOC's rounds (35000-row samples of 1.28M x 512) on the device vs the CPU path
  cd /tmp && "$PY" "$REPO/bench/bench_gpu_noise.py" --out "$OUT/gpu_noise.json" --budget 70
}

bench() {
  cd /tmp && "$PY" "$REPO/bench/bench_gpu_cl.py" --out "$OUT/gpu_bench.json" --budget 110
}

nccl() {  # issue 13: labelsift.distributed and Sinkhorn group= over one NCCL rank
  cd /tmp && "$PY" "$REPO/bench/nccl_check.py" --out "$OUT/nccl.json"
}

export REPO OUT PY
export -f env_report build info gpu_tests sk_tests sk_bench knn_tests knn_bench noise_tests noise_bench bench nccl

step env 20 env_report
step build 240 build
step info 20 info
step gpu_tests 180 gpu_tests
step sk_tests 60 sk_tests
step sk_bench 90 sk_bench
step knn_tests 60 knn_tests
step knn_bench 150 knn_bench
step noise_tests 60 noise_tests
step noise_bench 80 noise_bench
step nccl 40 nccl
step bench 120 bench
echo "total: $(( $(date +%s) - T0 ))s" | tee -a "$SUMMARY"
echo "== summary"; cat "$SUMMARY"
