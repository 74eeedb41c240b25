"""Random folds over a dataset's videos, as a split file: ``extract_features`` writes them for
your videos, and for a community h5 without its split file:

    python -m sgvs_jax.data.folds --h5 eccv16_dataset_summe_google_pool5.h5 --out summe_splits.json
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def make_folds(keys: Sequence[str], n_splits: int, seed: int = 0) -> list[dict]:
    """``n_splits`` random folds (at most one per video): each fold is a test set once."""
    if len(keys) < 2:
        raise ValueError(f"splits need at least 2 videos, got {len(keys)}")
    k = min(n_splits, len(keys))
    order = np.random.default_rng(seed).permutation(len(keys))
    folds = np.array_split(order, k)
    return [{"train_keys": [keys[i] for i in sorted(np.concatenate(folds[:j] + folds[j + 1:]))],
             "test_keys": [keys[i] for i in sorted(f)]} for j, f in enumerate(folds)]


def main(argv=None) -> None:
    """Writes ``--n_splits`` random folds over the videos of a community h5 (5 folds of 80/20, as
    the published split files have; their exact draws are the e-apostolidis or VASNet files)."""
    from sgvs_jax import cli
    from sgvs_jax.data.h5io import read_h5

    p = cli.ArgumentParser(prog="python -m sgvs_jax.data.folds", description=main.__doc__.split("\n")[0])
    p.add_argument("--h5", required=True, help="the community h5 whose video keys are split (read only)")
    p.add_argument("--out", required=True, help="the split file to write (JSON)")
    p.add_argument("--n_splits", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    def work():
        cli.guard_result(args.out, "sgvs_jax.data.folds", [args.h5], args.overwrite)
        from sgvs_jax.files import write_json
        keys = sorted(read_h5(args.h5), key=lambda k: (len(k), k))
        write_json(args.out, make_folds(keys, args.n_splits, args.seed))
        return len(keys)

    n = cli.run(work, args.debug)
    print(f"wrote {args.out}: {min(args.n_splits, n)} folds over {n} videos")


if __name__ == "__main__":
    main()
