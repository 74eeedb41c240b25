#!/usr/bin/env bash
# Accelerator check, well inside 10 minutes: the README job cold and warm on the device
# (benchmarks/speed_check.py, figures in LOGDIR/readme_job_gpu.json), a SumMe-shaped study
# (25 synthetic videos of 40-650 steps, 1024-d, 5 splits x 10 seeds x 100 epochs, compile
# included: LOGDIR/study_gpu.json, goal <= 60 s on one H100), CLIP image features of a 120-s
# video's steps (LOGDIR/clip_gpu.log) and the stage-step tests there.
# Run it where a GPU is lent:
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
START=$(date +%s.%N)
timeout 240 $PY -m sgvs_jax.study --config configs/default.py --seeds 0-9 --workdir "$LOG/study" \
  --config.data.synthetic.n_videos=25 --config.data.synthetic.min_steps=40 \
  --config.data.synthetic.max_steps=650 --config.data.synthetic.feature_dim=1024 \
  --config.data.buckets='()' --config.train.num_epochs=100 --config.compilation_cache_dir=none \
  --out "$LOG/study_summe_shaped.json" > "$LOG/study.log" 2>&1
RC=$?
$PY -c "import json, sys, time; json.dump({'study_s': round(time.time() - float(sys.argv[1]), 1), 'rc': int(sys.argv[2]),
  'goal_s': 60, 'what': '5 splits x 10 seeds x 100 epochs, SumMe-shaped synthetic, compile included'},
  open(sys.argv[3], 'w'))" "$START" "$RC" "$LOG/study_gpu.json"
cat "$LOG/study_gpu.json"; echo
# CLIP image features of the 240 steps of a 120-s video (the summarize target's largest stage on a CPU)
# with float32 products (summarize's 'auto' off a CPU) and with bfloat16 (not measured on a GPU yet)
for DT in float32 bfloat16; do
  timeout 90 $PY benchmarks/summarize_speed.py --clip_only 240 --clip_dtype $DT 2>&1 | tee -a "$LOG/clip_gpu.log"
done
timeout 200 $PY -m pytest -q -x -p no:cacheprovider tests/test_train_steps.py tests/test_compilation.py \
  -k "each_stage or incremental_step or options" 2>&1 | tee "$LOG/tests.log"
exit 0
