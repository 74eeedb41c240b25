"""Split files: a JSON list of {"train_keys": [...], "test_keys": [...]}, read and checked
(:mod:`sgvs_jax.data.folds` writes them)."""

from __future__ import annotations

import json
import os
from typing import Iterable

from sgvs_jax.data.video import DataError


def load_splits(path: str) -> list[dict]:
    """The splits of ``path``, checked: a non-empty list of objects whose
    ``train_keys`` and ``test_keys`` are non-empty lists of distinct strings,
    disjoint within a split.  Raises DataError naming the file and split."""
    if not path:
        raise DataError("no split file given (config data.split_path is empty)")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder; data.split_path must be a JSON split file")
    if not os.path.exists(path):
        raise DataError(f"{path}: split file not found")
    try:
        with open(path) as f:
            splits = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e})") from e
    if not isinstance(splits, list) or not splits:
        raise DataError(f"{path}: expected a non-empty JSON list of splits")
    for i, s in enumerate(splits):
        if not isinstance(s, dict):
            raise DataError(f"{path}: split {i} is not an object with 'train_keys' and 'test_keys'")
        for name in ("train_keys", "test_keys"):
            if name not in s:
                raise DataError(f"{path}: split {i} has no key '{name}'")
            keys = s[name]
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise DataError(f"{path}: split {i} '{name}' must be a list of video keys (strings)")
            if not keys:
                raise DataError(f"{path}: split {i} '{name}' is empty")
            if len(set(keys)) != len(keys):
                dup = sorted({k for k in keys if keys.count(k) > 1})
                raise DataError(f"{path}: split {i} '{name}' lists {dup[:5]} more than once")
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

