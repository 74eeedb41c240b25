"""Entry point: ``python -m sgvs_jax.main --config configs/default.py --workdir runs/x``."""

from absl import app, flags, logging
from ml_collections import config_flags

from sgvs_jax import train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", "configs/default.py", "Training configuration.", lock_config=True)
flags.DEFINE_string("workdir", "runs/default", "Where checkpoints, metrics and results.json go.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    if FLAGS.config.compilation_cache_dir:
        import jax
        jax.config.update("jax_compilation_cache_dir", FLAGS.config.compilation_cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main)
