#!/usr/bin/env bash
# Accelerator check, well inside 10 minutes: the README job cold and warm on the device
# (benchmarks/speed_check.py, figures in LOGDIR/readme_job_gpu.json) and the stage-step
# tests there.  Run it where a GPU is lent:
#
#   launch/gpu_check.sh [LOGDIR]      # default runs/gpu_check
#
# Needs the package importable (pip install -e '.[test]', or PYTHONPATH=.).
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-runs/gpu_check}
mkdir -p "$LOG"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null
$PY -c 'import jax; print("jax", jax.__version__, jax.devices(), flush=True)'
timeout 300 $PY benchmarks/speed_check.py --repeats 1 --out "$LOG/readme_job_gpu.json" 2>&1 | tee "$LOG/speed_check.log"
timeout 200 $PY -m pytest -q -x -p no:cacheprovider tests/test_train_steps.py tests/test_compilation.py \
  -k "each_stage or incremental_step or options" 2>&1 | tee "$LOG/tests.log"
exit 0
