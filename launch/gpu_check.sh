#!/usr/bin/env bash
# Accelerator check (finishes within 10 minutes), each step under its own time limit, logs in LOGDIR:
#   compile_variants  the default's update program compiled under other settings, one process at a
#                     time (sgvs_jax's settings twice: do two processes train to the same bits?; with
#                     XLA's GEMM autotuning; with JAX's threefry hash unrolled): seconds, HLO size,
#                     XLA's phase timers, parameter digests -> benchmarks/results/gpu_compile_variants.json
#   speed_check       benchmarks/speed_check.py: the README job cold and warm (and once more, warm,
#                     under cProfile: where a warm run's host time goes), each update program's
#                     compile alone in three arrangements (per stage with batched passes, the
#                     accelerators' default since stop 22; per stage with a call per pass, stop 21's; the
#                     fused update with a call per pass, stop 17's: train.fuse_stages and
#                     train.batched_passes; how far their parameters end apart), the SumMe-shaped epoch
#                     and host RSS -> benchmarks/results/gpu_check.json
#   tests             the compile-settings tests and the stage-step tests on the accelerator (the
#                     microbatch and member tests, minutes on a CPU, are left to CI)
# The CLIP benchmark (measured on the H100 on 2026-11-26) and compile_variants (measured on the H200
# in stop 17: benchmarks/results/gpu_compile_variants_alone.json) are left out unless STEPS names them.
#
#   launch/gpu_check.sh [LOGDIR]                          # default runs/gpu_check
#   STEPS="speed_check clip_speed" launch/gpu_check.sh    # a subset
#
# Needs the package importable (pip install -e '.[video]', or PYTHONPATH=.). speed_check keeps
# each finished stage in the JSON, so a stage cut by its limit loses only itself.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${1:-runs/gpu_check}
STEPS=${STEPS:-speed_check tests}
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
step compile_variants 200 $PY benchmarks/compile_variants.py --jobs 1 --timeout 80 \
  --only as_is as_is_again autotune_on unrolled_prng separate_passes --out benchmarks/results/gpu_compile_variants.json
step speed_check 450 $PY benchmarks/speed_check.py --skip_whole_batch --profile
step clip_speed 60 $PY benchmarks/summarize_speed.py --clip_only 2048
step tests 90 $PY -m pytest -q -x -p no:cacheprovider tests/test_xla_options.py tests/test_train_steps.py \
  -k "xla_options or incremental_step or each_stage or fuse_stages or batched_passes_draw"
cp benchmarks/results/gpu_check.json benchmarks/results/gpu_compile_variants.json "$LOG/" 2>/dev/null
exit 0
