"""PNG plot of a summary: frame scores over time, shot boundaries, selected shots shaded."""

from __future__ import annotations

import numpy as np

from sgvs_jax import require_extra


def plot_summary(path: str, times: np.ndarray, scores: np.ndarray, shots_seconds: np.ndarray,
                 selected: np.ndarray, title: str = "", duration: float | None = None) -> None:
    """Writes the plot to ``path`` (PNG, matplotlib's Agg backend).

    Args:
      times: (T,) seconds of the scored steps.
      scores: (T,) importance of each step.
      shots_seconds: (S, 2) start and end second of each shot.
      selected: (S,) bool, shots in the summary.
      duration: video length in seconds (x-axis end).
    """
    matplotlib = require_extra("matplotlib", "the summary plot")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    times, scores = np.asarray(times, float), np.asarray(scores, float)
    end = duration if duration is not None else (shots_seconds[-1, 1] if len(shots_seconds) else times[-1])
    fig, ax = plt.subplots(figsize=(10, 3), dpi=100)
    try:
        for (start, stop), chosen in zip(shots_seconds, selected):
            if chosen:
                ax.axvspan(start, stop, color="tab:orange", alpha=0.3, lw=0)
        for start in shots_seconds[1:, 0]:
            ax.axvline(start, color="0.75", lw=0.6, zorder=0)
        ax.step(np.append(times, end), np.append(scores, scores[-1]), where="post", color="tab:blue", lw=1.4,
                label="frame score")
        ax.set_xlim(0, end)
        ax.set_ylim(0, max(1.0, float(scores.max()) * 1.05))
        ax.set_xlabel("time (s)")
        ax.set_ylabel("importance")
        ax.set_title(title, fontsize=10)
        ax.legend(handles=[ax.lines[-1], Patch(color="tab:orange", alpha=0.3, label="selected shots")],
                  loc="upper right", fontsize=8, frameon=False)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
