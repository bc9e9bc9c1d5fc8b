"""Exceptions and warnings of fusionlab.

Messages follow one pattern: the rule, what was found, and how to fix it, with the file concerned.
"""

from __future__ import annotations

import os

__all__ = [
    "FileFormatError",
    "FrameError",
    "FusionlabError",
    "FusionlabWarning",
    "SessionFormatError",
    "UnitError",
    "ValidationError",
]


class FusionlabError(Exception):
    """Base class of every error raised by fusionlab."""


class ValidationError(FusionlabError, ValueError):
    """An object or an argument breaks a documented rule."""


class FileFormatError(FusionlabError, ValueError):
    """A source file cannot be read: not the format it claims, truncated, or corrupt.

    Parameters
    ----------
    path
        The offending file; it is put in front of the message.
    message
        What is wrong, and how to fix it where there is a fix.
    """

    def __init__(self, path: str | os.PathLike[str] | None, message: str) -> None:
        self.path = None if path is None else os.fspath(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class SessionFormatError(FileFormatError):
    """A file is not a fusionlab session, or was written by a newer, incompatible version."""


class FrameError(FusionlabError, ValueError):
    """Data is in a coordinate frame the operation does not accept."""


class UnitError(FusionlabError, ValueError):
    """A unit is unknown, or data does not look like the unit it claims."""


class FusionlabWarning(UserWarning):
    """A recoverable data problem (saturated channel, duplicate label, missing parameter, ...)."""
