"""The in-memory record of one video, as stored in a community-format h5 group."""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
from sgvs_jax.errors import DataError


MAX_FEATURE = 1e15  # larger feature values overflow a float32 step norm


@dataclasses.dataclass(frozen=True)
class Video:
    """One video of a summarization dataset.

    Attributes:
      key: h5 group name (``video_1`` ...).
      features: (T, D) float32 visual features of the T sampled steps.
      picks: (T,) frame index of each step.
      n_frames: number of frames of the original video.
      change_points: (S, 2) inclusive [start, end] frame of each shot.
      n_frame_per_seg: (S,) shot lengths.
      user_summary: (U, n_frames) 0/1 keyframe selections of U users.
      gtscore: (T,) mean annotator importance at the picks.
      name: original video name, where the file has it.
      user_scores: (U, n_frames) per-frame annotator importance (TVSum), optional.
      text_tokens: (L, Ds) CLIP text token features, optional.
      text_pooled: (Ds,) pooled CLIP text embedding, optional.
      clip_frames: (T, Ds) CLIP image features of the steps, optional.
    """

    key: str
    features: np.ndarray
    picks: np.ndarray
    n_frames: int
    change_points: np.ndarray
    n_frame_per_seg: np.ndarray
    user_summary: np.ndarray
    gtscore: np.ndarray
    name: Optional[str] = None
    user_scores: Optional[np.ndarray] = None
    text_tokens: Optional[np.ndarray] = None
    text_pooled: Optional[np.ndarray] = None
    clip_frames: Optional[np.ndarray] = None

    @property
    def length(self) -> int:
        return int(self.features.shape[0])

    def validate(self, source: str = "<memory>") -> "Video":
        """Checks the community layout's invariants; raises DataError naming file, video and key.

        Shapes agree (features / picks / gtscore on T steps, user_summary and
        user_scores on n_frames); every array is finite; picks strictly increase
        inside [0, n_frames); user_summary is 0/1; the shots tile 0 .. n_frames - 1
        contiguously; the semantic features share one size.
        """

        def fail(key, msg):
            raise DataError(f"{source}: video '{self.key}' key '{key}': {msg}")

        f = self.features
        if f.ndim != 2:
            fail("features", f"expected (T, D), got shape {f.shape}")
        if f.shape[0] == 0:
            fail("features", "empty video (0 steps)")
        if not np.all(np.isfinite(f)):
            fail("features", f"{int((~np.isfinite(f)).sum())} NaN/inf values")
        if np.abs(f).max() > MAX_FEATURE:  # the step norms (squares summed) would overflow float32
            i, j = np.unravel_index(int(np.argmax(np.abs(f))), f.shape)
            fail("features", f"value {f[i, j]:.3g} at step {i}, dimension {j}: beyond {MAX_FEATURE:.0e}, where "
                             "the normalisation overflows; rescale the features")
        T = f.shape[0]
        if self.n_frames <= 0:
            fail("n_frames", f"must be positive, got {self.n_frames}")
        if self.picks.shape != (T,):
            fail("picks", f"expected shape ({T},) to match features, got {self.picks.shape}")
        if T and (self.picks.min() < 0 or self.picks.max() >= self.n_frames):
            fail("picks", f"values must lie in [0, n_frames={self.n_frames}), got "
                          f"[{self.picks.min()}, {self.picks.max()}]")
        if np.any(np.diff(self.picks) <= 0):
            i = int(np.argmax(np.diff(self.picks) <= 0))
            fail("picks", f"must be strictly increasing (step {i + 1}: {self.picks[i]} -> {self.picks[i + 1]})")
        cp = self.change_points
        if cp.ndim != 2 or cp.shape[1] != 2 or cp.shape[0] == 0:
            fail("change_points", f"expected (S, 2) with S > 0, got shape {cp.shape}")
        if np.any(cp[:, 1] < cp[:, 0]):
            i = int(np.argmax(cp[:, 1] < cp[:, 0]))
            fail("change_points", f"shot {i} ends before it starts: {cp[i].tolist()}")
        # The shots tile the video: [0, e0], [e0 + 1, e1], ..., [.., n_frames - 1], as KTS writes them.
        # A gap, an overlap or a shot past the end changes the knapsack's capacity and F1 silently.
        if cp[0, 0] != 0:
            fail("change_points", f"the first shot must start at frame 0, got {cp[0].tolist()}")
        gaps = np.nonzero(cp[1:, 0] != cp[:-1, 1] + 1)[0]
        if gaps.size:
            i = int(gaps[0])
            kind = "overlap" if cp[i + 1, 0] <= cp[i, 1] else "leave a gap"
            fail("change_points", f"shots {i} {cp[i].tolist()} and {i + 1} {cp[i + 1].tolist()} {kind}: shots "
                                  "must cover the frames contiguously")
        if cp[-1, 1] != self.n_frames - 1:
            fail("change_points", f"the last shot ends at frame {cp[-1, 1]}, but n_frames={self.n_frames} "
                                  f"(it must end at {self.n_frames - 1})")
        if self.n_frame_per_seg.shape != (cp.shape[0],):
            fail("n_frame_per_seg", f"expected shape ({cp.shape[0]},), got {self.n_frame_per_seg.shape}")
        lengths = cp[:, 1] - cp[:, 0] + 1
        if np.any(self.n_frame_per_seg != lengths):
            i = int(np.argmax(self.n_frame_per_seg != lengths))
            fail("n_frame_per_seg", f"shot {i} has {self.n_frame_per_seg[i]} frames, but change_points "
                                    f"{cp[i].tolist()} make it {lengths[i]}")
        us = self.user_summary
        if us.ndim != 2 or us.shape[0] == 0:
            fail("user_summary", f"expected (U, n_frames) with U > 0, got shape {us.shape}")
        if us.shape[1] != self.n_frames:
            hint = " (transposed?)" if us.shape[0] == self.n_frames else ""
            fail("user_summary", f"expected (U, n_frames={self.n_frames}), got shape {us.shape}{hint}")
        if not np.all(np.isfinite(us)):
            fail("user_summary", "NaN/inf values")
        if not np.all((us == 0) | (us == 1)):
            fail("user_summary", f"values must be 0 or 1, got e.g. {us[(us != 0) & (us != 1)][0]}")
        if self.gtscore.shape != (T,):
            fail("gtscore", f"expected shape ({T},), got {self.gtscore.shape}")
        if not np.all(np.isfinite(self.gtscore)):
            fail("gtscore", "NaN/inf values")
        if self.user_scores is not None:
            if self.user_scores.ndim != 2 or self.user_scores.shape[1] != self.n_frames:
                fail("user_scores", f"expected (U, n_frames={self.n_frames}), got {self.user_scores.shape}")
            if not np.all(np.isfinite(self.user_scores)):
                fail("user_scores", "NaN/inf values")
        if self.text_tokens is not None:
            if self.text_tokens.ndim != 2 or self.text_tokens.shape[0] == 0:
                fail("text_tokens", f"expected (L, Ds) with L > 0, got {self.text_tokens.shape}")
            if not np.all(np.isfinite(self.text_tokens)):
                fail("text_tokens", "NaN/inf values")
        if self.text_pooled is not None:
            if self.text_pooled.ndim != 1:
                fail("text_pooled", f"expected (Ds,), got {self.text_pooled.shape}")
            if not np.all(np.isfinite(self.text_pooled)):
                fail("text_pooled", "NaN/inf values")
        if self.clip_frames is not None:
            if self.clip_frames.ndim != 2 or self.clip_frames.shape[0] != T:
                fail("clip_frames", f"expected ({T}, Ds), got {self.clip_frames.shape}")
            if not np.all(np.isfinite(self.clip_frames)):
                fail("clip_frames", "NaN/inf values")
        dims = {n: getattr(self, n).shape[-1] for n in ("text_tokens", "text_pooled", "clip_frames")
                if getattr(self, n) is not None}
        if len(set(dims.values())) > 1:
            fail(next(iter(dims)), f"the semantic features must share one size, got {dims}")
        return self
