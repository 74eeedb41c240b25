#!/usr/bin/env bash
# Accelerator check (finishes within 8 minutes): versions, then benchmarks/speed_check.py, which
# writes benchmarks/results/gpu_check.json (the README job cold and warm, each update program's
# compile seconds, the SumMe-shaped epoch), then the update program's compile with XLA's GPU
# autotuning off (benchmarks/results/gpu_compile_autotune0.json: is autotuning what makes the H100
# compile slow?) and the jit/step tests, each under its own time limit, logs in LOGDIR. The CLIP
# benchmark (measured on the H100 on 2026-11-26) is left out unless STEPS names it.
#
#   launch/gpu_check.sh [LOGDIR]                          # default runs/gpu_check
#   STEPS="speed_check clip_speed" launch/gpu_check.sh    # a subset
#
# Needs the package importable (pip install -e '.[video]', or PYTHONPATH=.). speed_check keeps
# each finished stage in the JSON, so a stage cut by its limit loses only itself.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-runs/gpu_check}
STEPS=${STEPS:-speed_check compile_autotune0 tests}
mkdir -p "$LOG"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS CMD...
  local name=$1 limit=$2; shift 2
  [[ " $STEPS " == *" $name "* ]] || return 0
  echo "=== $name (limit ${limit} s)"
  local t0=$SECONDS
  timeout "$limit" "$@" 2>&1 | grep -v -i "warning" | tee "$LOG/$name.log"
  echo "=== $name: rc ${PIPESTATUS[0]}, $((SECONDS - t0)) s"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY -c 'import jax, flax, optax, numpy; print("jax", jax.__version__, "flax", flax.__version__,
"optax", optax.__version__, "numpy", numpy.__version__, jax.devices(), flush=True)'
step speed_check 360 $PY benchmarks/speed_check.py --skip_microbatch
step compile_autotune0 60 env XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_autotune_level=0" \
  $PY benchmarks/compile_cost.py --updates 2 --out benchmarks/results/gpu_compile_autotune0.json
step clip_speed 60 $PY benchmarks/summarize_speed.py --clip_only 2048
step tests 60 $PY -m pytest -q -x -p no:cacheprovider tests/test_train_steps.py tests/test_layers.py
cp benchmarks/results/gpu_check.json benchmarks/results/gpu_compile_autotune0.json "$LOG/" 2>/dev/null
exit 0
