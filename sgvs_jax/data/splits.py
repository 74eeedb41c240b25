"""The standard 5-fold split files: a JSON list of {"train_keys": [...], "test_keys": [...]}."""

from __future__ import annotations

import json
import os
from typing import Iterable

from sgvs_jax.data.video import DataError


def load_splits(path: str) -> list[dict]:
    if not os.path.exists(path):
        raise DataError(f"{path}: split file not found")
    try:
        with open(path) as f:
            splits = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(splits, list) or not splits:
        raise DataError(f"{path}: expected a non-empty JSON list of splits")
    for i, s in enumerate(splits):
        for name in ("train_keys", "test_keys"):
            if not isinstance(s, dict) or name not in s:
                raise DataError(f"{path}: split {i} has no key '{name}'")
        overlap = set(s["train_keys"]) & set(s["test_keys"])
        if overlap:
            raise DataError(f"{path}: split {i} has keys in both train and test: {sorted(overlap)[:5]}")
    return splits


def check_split_keys(split: dict, available: Iterable[str], split_path: str, data_path: str,
                     index: int) -> None:
    """Raises DataError naming split file, split index, data file and missing keys."""
    available = set(available)
    for name in ("train_keys", "test_keys"):
        missing = [k for k in split[name] if k not in available]
        if missing:
            raise DataError(f"{split_path}: split {index} '{name}' lists {missing[:5]}"
                            f"{' ...' if len(missing) > 5 else ''} not in {data_path}")
