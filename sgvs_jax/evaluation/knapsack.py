"""Exact 0/1 knapsack, as used by every SUM-GAN-lineage evaluation script."""

from __future__ import annotations

import numpy as np


def knapsack(values, weights, capacity: int) -> list[int]:
    """Selects items maximising total value with total weight <= capacity.

    Matches the dynamic program of the community ``knapsack_implementation.py``
    (an item is kept only when it strictly improves the table), so ties are
    resolved the same way as in the published evaluation code.

    Args:
      values: (n,) item values (shot importance).
      weights: (n,) positive integer weights (shot lengths in frames).
      capacity: integer budget (e.g. ``int(n_frames * 0.15)``).

    Returns:
      Sorted indices of the selected items.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.int64)
    if values.shape != weights.shape or values.ndim != 1:
        raise ValueError(f"knapsack: values {values.shape} and weights {weights.shape} must be equal 1-D")
    if np.any(weights < 0):
        raise ValueError("knapsack: weights must be non-negative")
    if not np.all(np.isfinite(values)):
        raise ValueError("knapsack: values must be finite")
    capacity = int(capacity)
    n = len(values)
    if n == 0 or capacity <= 0:
        return []
    table = np.zeros(capacity + 1)
    keep = np.zeros((n, capacity + 1), dtype=bool)
    for i in range(n):
        w, v = weights[i], values[i]
        if w > capacity:
            continue
        candidate = np.full(capacity + 1, -np.inf)
        candidate[w:] = table[: capacity + 1 - w] + v
        take = candidate > table
        keep[i] = take
        table = np.where(take, candidate, table)
    selected = []
    c = capacity
    for i in range(n - 1, -1, -1):
        if keep[i, c]:
            selected.append(i)
            c -= weights[i]
    return sorted(selected)
