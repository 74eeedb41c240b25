"""Entry point: ``python -m sgvs_jax.main --config configs/default.py --workdir runs/x``.

Any config key can be set on the command line as ``--config.KEY=VALUE`` (for example
``--config.train.num_epochs=20 --config.splits='(0,)'``).  Expected errors (bad
config, data, workdir or checkpoint) print one ``error:`` line and exit with status
1; ``--debug`` shows the traceback instead (:mod:`sgvs_jax.cli`, every command's front door).
"""

from absl import app, flags

from sgvs_jax import cli

cli.define_run_flags("runs/default")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def work():
        from sgvs_jax import compilation, train
        compilation.enable(FLAGS.config.compilation_cache_dir)
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir, restart=FLAGS.restart)

    cli.run(work, FLAGS.debug)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_run_flags)
