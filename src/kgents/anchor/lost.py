"""What a failed database call tells its caller: nothing happened, or (for a write) nobody can know.

A connection the server refused (PostgreSQL starting up or shutting down, no listener, too many connections)
carried no statement: the write was not carried out, and the answer is `unavailable`. A connection that broke while
a statement or its commit was under way (a restart, `pg_terminate_backend`, a reset socket, a timeout) may have
carried the write to the server and lost only its answer: for a write that is `outcome_unknown`, never a plain
"unavailable" a caller would read as "not done". asyncpg is looked at only when something imported it, so the
embedded default never pays for it.
"""

from __future__ import annotations

import sys

from kgents.errors import BackendUnavailableError, KgentsError, OutcomeUnknownError

_REFUSED_NAMES = (
    "CannotConnectNowError",
    "TooManyConnectionsError",
    "ClientCannotConnectError",
    "ConnectionRejectionError",
    "InvalidCatalogNameError",
    "InvalidAuthorizationSpecificationError",
    "InvalidPasswordError",
)
"""asyncpg errors that come before any statement was sent (connecting failed)."""
_LOST_NAMES = (
    "PostgresConnectionError",  # ConnectionDoesNotExistError: closed in the middle of an operation
    "AdminShutdownError",  # pg_terminate_backend, a fast shutdown
    "CrashShutdownError",
    "InterfaceError",
    "InternalClientError",  # what a connection the server terminated while idle reports
)


def _asyncpg_kinds(names: tuple[str, ...]) -> tuple[type[BaseException], ...]:
    module = sys.modules.get("asyncpg")
    if module is None:
        return ()
    return tuple(kind for name in names if isinstance(kind := getattr(module, name, None), type))


def refused(exc: BaseException) -> bool:
    """The connection was never made: nothing was sent (a socket error other than a broken connection or a
    timeout comes from connecting: refused, unreachable, a name that does not resolve)."""
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError | TimeoutError):
        return True
    return isinstance(exc, (ConnectionRefusedError, *_asyncpg_kinds(_REFUSED_NAMES)))


def lost(exc: BaseException) -> bool:
    """The connection broke (or timed out) with work in flight: a write may have been carried out."""
    if refused(exc):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, *_asyncpg_kinds(_LOST_NAMES)))


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def backend_error(exc: BaseException, *, writing: bool, what: str = "PostgreSQL") -> KgentsError | None:
    """The kgents error a refused or lost connection stands for (None for any other failure): `unavailable` when
    nothing was sent or the call only read, `outcome_unknown` for a write whose answer was lost."""
    if refused(exc):
        done = "; nothing was written" if writing else ""
        return BackendUnavailableError(f"KGENTS_POSTGRES_URL: cannot reach {what}: {first_line(exc)}{done}")
    if not lost(exc):
        return None
    if writing:
        return OutcomeUnknownError(
            f"KGENTS_POSTGRES_URL: lost the connection to {what} during a write ({first_line(exc)}); it may or may"
            " not have been carried out"
        )
    return BackendUnavailableError(f"KGENTS_POSTGRES_URL: lost the connection to {what}: {first_line(exc)}")
