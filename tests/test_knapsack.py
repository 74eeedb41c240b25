import itertools

import numpy as np
import pytest

from sgvs_jax.evaluation.knapsack import knapsack


def brute_force(values, weights, capacity):
    best = 0.0
    for r in range(len(values) + 1):
        for subset in itertools.combinations(range(len(values)), r):
            w = sum(weights[i] for i in subset)
            v = sum(values[i] for i in subset)
            if w <= capacity and v > best + 1e-12:
                best = v
    return best


def test_textbook_case():
    # values 60/100/120, weights 10/20/30, capacity 50 -> items 1 and 2 (value 220)
    assert knapsack([60, 100, 120], [10, 20, 30], 50) == [1, 2]


def test_nothing_fits():
    assert knapsack([1.0, 2.0], [10, 20], 5) == []
    assert knapsack([], [], 10) == []


@pytest.mark.parametrize("seed", range(20))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    values = rng.random(n)
    weights = rng.integers(1, 15, size=n)
    capacity = int(rng.integers(0, 40))
    sel = knapsack(values, weights, capacity)
    assert sum(weights[i] for i in sel) <= capacity
    assert sum(values[i] for i in sel) == pytest.approx(brute_force(values, weights, capacity))


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        knapsack([1.0, np.nan], [1, 1], 3)
    with pytest.raises(ValueError):
        knapsack([1.0], [1, 2], 3)
