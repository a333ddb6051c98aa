"""What the server answers for failures that are not the memory's own errors.

A database connection lost on a path no store method wraps (a claim, a health read) is 503: `unavailable` for a
read, `outcome_unknown` for a write, never a 500 the caller would read as "refused". A client that hung up before
its request was read has nobody to answer and is no internal error: it is logged at debug level only.
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect

from kgents.anchor.lost import backend_error


def hung_up(error: BaseException) -> bool:
    """The client closed its connection (or was closed for being too slow) before its request was read whole."""
    return isinstance(error, ClientDisconnect)


def as_known(error: BaseException, *, writing: bool) -> BaseException:
    """A lost or refused database connection as the kgents error it stands for; any other error as it is."""
    return backend_error(error, writing=writing) or error
