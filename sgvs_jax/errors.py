"""The errors a user's input can cause, in one module every layer imports without climbing.

Each names what is wrong (the file, video, key or flag) and what to do; the front door
(:mod:`sgvs_jax.cli`) prints any of them as one ``error:`` line.  Anything else is a bug
and keeps its traceback.
"""


class ArgumentError(ValueError):
    """A command-line argument that cannot be read as given; the message names the flag."""


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


class DataError(ValueError):
    """Bad input data; the message names the file and the key."""


class OutputError(ValueError):
    """An output path that would destroy an input or a file that is not ours."""


class WorkdirError(RuntimeError):
    """A workdir that cannot be used as asked; the message says why and what to do."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, changed since it was saved, or of another run."""


class VideoError(ValueError):
    """A video file that cannot be decoded or written as asked."""


class ClipError(ValueError):
    """A CLIP model folder that cannot be loaded."""
