#!/usr/bin/env bash
# Accelerator check: versions, the training-speed and CLIP benchmarks, the jit/step tests and
# the embedded default job, each under its own time limit, logs in LOGDIR.
#
#   launch/gpu_check.sh [LOGDIR]                       # default runs/gpu_check
#   STEPS="train_speed clip_speed" launch/gpu_check.sh  # a subset
#
# Needs the package importable (pip install -e '.[video]', or PYTHONPATH=.). On an H100 one
# update program compiles in about a minute (see benchmarks/RESULTS.md), so the limits below
# are mostly compile time; set CACHE_DIR to keep compiled programs for the next run.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-runs/gpu_check}
RUN=${RUN_DIR:-$LOG/default}  # the default job's workdir
STEPS=${STEPS:-train_speed clip_speed tests default_job}
CACHE=${CACHE_DIR:+--config.compilation_cache_dir=$CACHE_DIR}
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
step train_speed 420 $PY benchmarks/train_speed.py --epochs 2 --members 1 4 --lengths 128 1024 4096 \
  --blocks 0 --log_compiles
step clip_speed 120 $PY benchmarks/summarize_speed.py --clip_only 2048
step tests 600 $PY -m pytest -q -x -p no:cacheprovider tests/test_train_steps.py tests/test_layers.py
step default_job 600 $PY -m sgvs_jax.main --config configs/default.py --workdir "$RUN" $CACHE
[ -f "$RUN/results.json" ] && cp "$RUN/results.json" "$LOG/default_results.json"
exit 0
