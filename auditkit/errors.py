"""Every error a user can see, in one place. Each carries the context needed to act on it."""

from __future__ import annotations


class AuditkitError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class InputError(AuditkitError):
    """An input file cannot be read as the format it was detected or forced as."""

    def __init__(self, path: str, reason: str, position: str | None = None):
        self.path, self.reason, self.position = path, reason, position
        where = f"{path}:{position}" if position else path
        super().__init__(f"{where}: {reason}")


class UnknownFormatError(InputError):
    """No registered format recognises the file's content."""


class ConfigError(AuditkitError):
    """A settings, classification or parameters file is invalid."""


class ReportError(AuditkitError):
    """A notebook failed while building a report."""
