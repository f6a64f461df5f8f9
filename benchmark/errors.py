"""User-facing errors: each renders as one line on stderr and exit code 2."""

from __future__ import annotations

from typing import Any


class ErasebenchError(Exception):
    """Bad input or an unusable environment; the message names the bad value and what is allowed."""

    exit_code = 2

    def __str__(self) -> str:
        # always one line, whatever a value named in the message holds
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


class UnknownPluginError(ErasebenchError):
    """A name that no registry knows."""


class SuiteError(ErasebenchError):
    """A suite file or its data is malformed."""


class ArtifactError(ErasebenchError):
    """A video or sidecar is missing, truncated or undecodable: never scored as safe."""


class UnsupportedFamilyError(ErasebenchError):
    """An eraser or metric does not define what to do for a model family."""


def describe_validation_error(exc: Any) -> str:
    """``loc: message`` of a pydantic ``ValidationError``'s first error (one line)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    return f"{loc}: {err['msg']}"


def validate_config(config_cls: Any, args: dict[str, Any], what: str) -> Any:
    """``config_cls.model_validate(args)``, or one ``ErasebenchError`` naming the argument and the allowed ones
    (``what``: e.g. "eraser 'refusal'"). Every plugin's ``from_args`` goes through here."""
    from pydantic import ValidationError

    try:
        return config_cls.model_validate(args)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        allowed = ", ".join(config_cls.model_fields) or "none"
        raise ErasebenchError(f"{what} argument {loc!r}: {err['msg']} (arguments: {allowed})") from None
