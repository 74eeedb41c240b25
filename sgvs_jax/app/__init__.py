"""Summarizing your own videos: decode, CLIP features, KTS shots, a trained run's scores.

  extract_features  a folder of videos -> a community-format h5 (+ CLIP keys) to train on
  add_clip          CLIP keys for a published community h5 (the full method on it)
  summarize         one video + a trained run -> summary.mp4, .json, .png
  clip              sgvs_jax's own Flax CLIP (clip_model) with its tokenizer; converter
  inference         a trained run as a scorer;  video_io  PyAV decoding and encoding

Each needs the ``[video]`` extra (``pip install -e '.[video]'``).
"""
