"""Every exit code `kgents` uses, and the one function that maps an error to its code.

Status commands speak Nagios (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN); failures use the BSD sysexits values, so
a script can tell "the garden is unhealthy" from "you typed it wrong" from "the server is down".
"""

from __future__ import annotations

from enum import IntEnum

from typer.exceptions import TyperException

from kgents.errors import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    IndexMismatchError,
    NotFoundError,
    PermissionDeniedError,
    SchemaError,
    StorageFullError,
    ValidationError,
)
from kgents.health.model import Level, parse_level


class ExitCode(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3
    USAGE = 64
    DATA_ERROR = 65
    NOT_FOUND = 66  # EX_NOINPUT: what was asked for, or an input file, is not there (or cannot be read)
    UNAVAILABLE = 69
    INTERNAL = 70
    STORAGE_FULL = 74  # EX_IOERR: the disk holding the home is full (nothing lost: free space, run it again)
    CONFLICT = 75
    NO_PERMISSION = 77  # EX_NOPERM: the server's token does not allow it (another persona, read-only)
    CONFIG = 78
    INTERRUPTED = 130


_BY_ERROR: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (TyperException, ExitCode.USAGE),  # click's usage errors: unknown flag, bad flag value, a missing --yes
    (ConfigError, ExitCode.CONFIG),
    (SchemaError, ExitCode.CONFIG),
    (IndexMismatchError, ExitCode.CONFIG),
    (StorageFullError, ExitCode.STORAGE_FULL),
    (BackendUnavailableError, ExitCode.UNAVAILABLE),
    (PermissionDeniedError, ExitCode.NO_PERMISSION),
    (NotFoundError, ExitCode.NOT_FOUND),
    (ConflictError, ExitCode.CONFLICT),
    (ValidationError, ExitCode.DATA_ERROR),
    (KeyboardInterrupt, ExitCode.INTERRUPTED),
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code for an error that ends a command: one rule per situation, the README's table."""
    for kind, code in _BY_ERROR:
        if isinstance(error, kind):
            return code
    return ExitCode.INTERNAL


def exit_code_for_level(level: Level | str) -> ExitCode:
    """The one mapping every status command uses (Nagios): THRIVING / HEALTHY → 0, STRAINED / DEGRADED → 1,
    CRITICAL → 2, UNKNOWN (no data) → 3."""
    return _BY_LEVEL[parse_level(level)]


_BY_LEVEL: dict[Level, ExitCode] = {
    Level.THRIVING: ExitCode.OK,
    Level.HEALTHY: ExitCode.OK,
    Level.STRAINED: ExitCode.WARNING,
    Level.DEGRADED: ExitCode.WARNING,
    Level.CRITICAL: ExitCode.CRITICAL,
    Level.UNKNOWN: ExitCode.UNKNOWN,
}
