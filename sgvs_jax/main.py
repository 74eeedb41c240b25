"""Entry point: ``python -m sgvs_jax.main --config configs/default.py --workdir runs/x``.

Any config key can be set on the command line as ``--config.KEY=VALUE`` (for example
``--config.train.num_epochs=20 --config.splits='(0,)'``).  Expected errors (bad
config, data, workdir or checkpoint) print one ``error:`` line and exit with status
1; ``--debug`` shows the traceback instead.
"""

import difflib
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "default.py")
FLAGS = flags.FLAGS


def fail(message: str) -> None:
    print(f"error: {message} (--debug shows the traceback)", file=sys.stderr)
    sys.exit(1)


def config_error(e: Exception, argv) -> None:
    """A bad ``--config.KEY`` (unknown, mistyped, wrong type) as one error line; with
    ``--debug`` the error itself."""
    if "--debug" in argv:
        raise e
    text = str(e)
    if isinstance(e, (AttributeError, KeyError)):  # an unknown key: name it and the closest known one
        keys = [a.split("=")[0][len("--config."):] for a in argv[1:] if a.startswith("--config.")]
        bad = next((k for k in keys if re.search(rf"\b{re.escape(k.rsplit('.', 1)[-1])}\b", text)), None)
        if bad is not None:
            close = difflib.get_close_matches(bad, _known_keys(), n=1, cutoff=0.75)
            fail(f"--config.{bad}: unknown config key" + (f"; did you mean --config.{close[0]}?" if close else ""))
    fail(text)


def _known_keys() -> list:
    try:
        from configs import default
    except ImportError:
        return []
    out = []

    def walk(d, prefix):
        for k, v in d.items():
            walk(v, f"{prefix}{k}.") if hasattr(v, "items") else out.append(f"{prefix}{k}")

    walk(default.get_config().to_dict(), "")
    return out


try:  # without --config, ml_collections applies the --config.KEY overrides to the default here
    config_flags.DEFINE_config_file(
        "config", DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else "configs/default.py",
        "Training configuration: a configs/<name>.py file. Override any key with --config.KEY=VALUE, "
        "e.g. --config.train.num_epochs=20 --config.splits='(0,)'.", lock_config=True)
except (AttributeError, KeyError, TypeError, ValueError) as e:
    config_error(e, sys.argv)
flags.DEFINE_string("workdir", "runs/default", "Where checkpoints, metrics and results.json go.")
flags.DEFINE_bool("restart", False, "Discard the run already in --workdir (its own files only) and train anew.")
flags.DEFINE_bool("debug", False, "Show the full traceback of an error.")


def parse_flags(argv):
    """absl's parsing, with a bad ``--config.KEY`` (unknown, mistyped, wrong type) as one error line."""
    try:
        return FLAGS(argv)
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        config_error(e, argv)
    except flags.Error as e:
        if "--debug" in argv:
            raise
        fail(str(e))


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def work():
        from sgvs_jax import compilation, train
        compilation.enable(FLAGS.config.compilation_cache_dir)
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir, restart=FLAGS.restart)

    guarded(work)


def guarded(work) -> None:
    """Runs ``work()`` quietly (orbax logs every file it writes at INFO) with the expected
    errors (DataError, ConfigError, WorkdirError, CheckpointError, MemoryError ...) as one
    ``error:`` line; ``--debug`` raises them."""
    logging.set_verbosity(logging.WARNING)
    try:
        work()
    except (ValueError, RuntimeError, OSError, ArithmeticError, MemoryError) as e:
        if FLAGS.debug:
            raise
        fail(str(e))


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
