"""Standard video-summarization evaluation: knapsack summaries, F1, rank correlations."""

from sgvs_jax.evaluation.baselines import CRITERIA, training_free_baselines, training_free_scores
from sgvs_jax.evaluation.knapsack import knapsack
from sgvs_jax.evaluation.protocol import (
    check_scores,
    evaluate_video,
    evaluate_videos,
    human_baseline,
    random_baseline,
    rank_normalize,
)
from sgvs_jax.evaluation.rank import rank_correlations
from sgvs_jax.evaluation.summary import (
    check_budget,
    f1_against_users,
    frame_scores_from_picks,
    generate_summary,
    shot_scores,
)

__all__ = [
    "CRITERIA", "training_free_baselines", "training_free_scores",
    "knapsack", "check_budget", "check_scores", "evaluate_video", "evaluate_videos", "human_baseline", "random_baseline",
    "rank_normalize", "rank_correlations", "f1_against_users", "frame_scores_from_picks", "generate_summary",
    "shot_scores",
]
