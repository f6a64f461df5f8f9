"""User-facing errors: each renders as one line on stderr and exit code 2."""


class ErasebenchError(Exception):
    """Bad input or an unusable environment; the message names the bad value and what is allowed."""

    exit_code = 2


class UnknownPluginError(ErasebenchError):
    """A name that no registry knows."""


class SuiteError(ErasebenchError):
    """A suite file or its data is malformed."""


class ArtifactError(ErasebenchError):
    """A video or sidecar is missing, truncated or undecodable: never scored as safe."""


class UnsupportedFamilyError(ErasebenchError):
    """An eraser or metric does not define what to do for a model family."""
