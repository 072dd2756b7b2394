"""The project's exception types.

Every failure caused by a user's input (a config, a bundle, a model file, a video) raises a subclass of
`ArthoiError` whose message names the file, key, shape or value at fault and what was expected.
Anything else escaping the library is a bug.
"""


class ArthoiError(Exception):
    """Base class of every error arthoi_jax raises on purpose."""


class ConfigError(ArthoiError, ValueError):
    """A config key, type or value is invalid (the message names the dotted key)."""


class BundleError(ArthoiError, ValueError):
    """A scene bundle is missing, malformed or inconsistent (the message names the field)."""


class ModelFileError(ArthoiError, ValueError):
    """A body-model or network checkpoint file cannot be used (the message names the file)."""


class InputError(ArthoiError, ValueError):
    """A video, image, prompt or other run-time input is unusable."""


class NoMovingPartError(InputError):
    """Part segmentation found no moving part: the object is rigid (or nothing on it moves enough).

    `evidence` (JSON-able) holds the measured motion the decision rests on (after camera compensation when the
    camera moves), so callers can report a rigid object instead of failing.
    """

    def __init__(self, message: str, evidence: dict):
        super().__init__(message)
        self.evidence = evidence


class MissingDependencyError(ArthoiError, ImportError):
    """An optional package is not installed (the message says what to install)."""


class OptimizationError(ArthoiError, RuntimeError):
    """An optimization diverged (non-finite loss or gradient); the message names stage, step and quantity.

    `last_good` carries the optimization's state before the failing step as named numpy arrays (None when there
    is none): the stages stay free of IO and the caller's IO layer saves it (io.outputs.save_failed_state).
    """

    def __init__(self, message: str, last_good: dict | None = None):
        super().__init__(message)
        self.last_good = last_good


class OutputExistsError(ArthoiError, FileExistsError):
    """An output folder already holds results and neither --resume nor --overwrite was given."""
