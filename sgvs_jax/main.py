"""Entry point: ``python -m sgvs_jax.main --config configs/default.py --workdir runs/x``.

Expected errors (bad config, data, workdir or checkpoint) print one ``error:``
line and exit with status 1; ``--debug`` shows the traceback instead.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/default.py", "Training configuration.", lock_config=True)
flags.DEFINE_string("workdir", "runs/default", "Where checkpoints, metrics and results.json go.")
flags.DEFINE_bool("restart", False, "Discard the run already in --workdir (its own files only) and train anew.")
flags.DEFINE_bool("debug", False, "Show the full traceback of an error.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    try:
        from sgvs_jax import compile_cache, train
        compile_cache.enable(FLAGS.config.compilation_cache_dir)
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir, restart=FLAGS.restart)
    except (ValueError, RuntimeError, OSError, ArithmeticError) as e:  # DataError, ConfigError, WorkdirError ...
        if FLAGS.debug:
            raise
        print(f"error: {e} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
