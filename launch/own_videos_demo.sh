#!/usr/bin/env bash
# Own videos, end to end, offline: synthetic scene videos and a tiny random CLIP
# stand in for your videos and a real CLIP (pass CLIP_MODEL=DIR and VIDEOS=DIR
# to use yours).  extract_features -> train -> summarize.
#
#   bash launch/own_videos_demo.sh [OUT_DIR]      (about 2 minutes on a 2-core CPU)
set -euo pipefail
OUT=${1:-runs/own_videos_demo}
PY=${PYTHON:-python}
mkdir -p "$OUT"
if [[ -z "${CLIP_MODEL:-}" ]]; then
  CLIP_MODEL=$OUT/random_clip
  $PY -c "from sgvs_jax.app.clip import save_random_clip as s; s('$CLIP_MODEL')"
fi
if [[ -z "${VIDEOS:-}" ]]; then
  VIDEOS=$OUT/videos
  mkdir -p "$VIDEOS"
  $PY - "$VIDEOS" <<'PYEOF'
import sys
import numpy as np
from tests.synthetic_video import make_scene_video
rng = np.random.default_rng(0)
for i in range(8):
    make_scene_video(f"{sys.argv[1]}/scenes_{i}.mp4", tuple(rng.uniform(1.5, 6.0, 8).round(1)), fps=10, seed=i)
make_scene_video(f"{sys.argv[1]}/../new_video.mp4", (3.0, 5.0, 2.0, 4.5, 6.0, 2.5, 3.5, 5.0, 4.0, 3.0),
                 fps=10, seed=99)
PYEOF
fi
$PY -m sgvs_jax.app.extract_features --videos "$VIDEOS" --clip_model "$CLIP_MODEL" --out "$OUT/videos.h5"
$PY -m sgvs_jax.main --config configs/clip_h5.py --config.data.h5_path="$OUT/videos.h5" \
    --workdir "$OUT/run"
$PY -m sgvs_jax.app.summarize --video "${NEW_VIDEO:-$OUT/new_video.mp4}" --workdir "$OUT/run" \
    --out "$OUT/summary.mp4" --title "coloured scenes"
