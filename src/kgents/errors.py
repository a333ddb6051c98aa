"""The error vocabulary shared by every capability.

Each error carries a message written for a person (one plain line, no secrets), so the CLI can print it as is and
map its class to an exit code in one place (`kgents.cli.exit_codes`).
"""

from __future__ import annotations


class KgentsError(Exception):
    """Base of every error kgents raises on purpose."""


class ValidationError(KgentsError, ValueError):
    """A value was rejected before anything was written."""


class TooLargeError(ValidationError):
    """A request or an input over its size limit; nothing of it was used."""


class NotFoundError(KgentsError, LookupError):
    """The thing asked for does not exist (for this persona)."""


class ConflictError(KgentsError):
    """A write lost a race or collided with existing data; nothing was changed."""


class LifecycleError(ValidationError):
    """A lifecycle transition that the written rules forbid."""


class PermissionDeniedError(KgentsError):
    """The caller's credentials do not allow this (another persona's memory, a write with a read-only token, an
    operator action with a persona token); nothing was read or changed."""


class ConfigError(KgentsError):
    """A setting is malformed; the message names the setting."""


class BackendUnavailableError(KgentsError):
    """A server could not be reached or refused us; the message names the setting, never the secret."""


class OutcomeUnknownError(BackendUnavailableError):
    """A write reached a server (or the database) but its answer was lost: it may or may not have been carried out.
    An idempotent write (`remember` with the same entry id, `forget`, `update`, `reassess`, `set_mode`) is safe to
    send again, and its answer then tells; another one (`nurture` by a delta, `nudge`) should be checked first."""


class NotIndexedError(BackendUnavailableError):
    """A write was carried out and kept in the anchor, but it is not searchable yet (the index or the relay's
    bookkeeping could not be reached); a relay applies it later, and sending the write again is not needed."""


class StorageFullError(BackendUnavailableError):
    """The disk holding the home (or the index) has no room: what could not be written was not kept, unless the
    error is also a NotIndexedError (the write is in the anchor, the index could not take it)."""


class IndexStorageFullError(NotIndexedError, StorageFullError):
    """A write kept in the anchor that the index could not take for want of disk space."""


class SchemaError(KgentsError):
    """The database schema is missing, too old or newer than this code."""


class IndexMismatchError(KgentsError):
    """The vector index was built by another embedder or dimension than the one configured, or it is not the
    index the anchor feeds."""


class IndexLockedError(BackendUnavailableError):
    """The embedded vector index is owned by another process (the message names it)."""

    def __init__(self, message: str, owner: str | None = None) -> None:
        super().__init__(message)
        self.owner = owner
        """Who owns it, e.g. `pid 42 on host (since …)`, when known."""


def shown(value: object) -> str:
    """A bad value as an error message quotes it: its repr, cut at 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
