"""Log records of kgents and of the libraries under it (asyncpg, redis, qdrant, httpx) as one plain line each on
stderr: `kgents: warning: asyncpg.pool: Failed to restore … (ConnectionRefusedError: …)`. A traceback is shown only
with KGENTS_DEBUG=1."""

from __future__ import annotations

import logging
import os
import sys

_MAX_REASON_CHARS = 200


def one_line(record: logging.LogRecord, *, debug: bool = False) -> str:
    """The record as one line: level, logger (unless it is ours), message, and the exception's type and first line."""
    message = " ".join(record.getMessage().split())
    source = "" if record.name == "kgents" or record.name.startswith("kgents.") else f"{record.name}: "
    line = f"kgents: {record.levelname.lower()}: {source}{message}"
    error = record.exc_info[1] if record.exc_info else None
    if error is not None:
        reason = " ".join(str(error).split())[:_MAX_REASON_CHARS]
        line += f" ({type(error).__name__}: {reason})" if reason else f" ({type(error).__name__})"
    if debug and record.exc_info:
        line += "\n" + logging.Formatter().formatException(record.exc_info)
    return line


class OneLineHandler(logging.Handler):
    """Writes `one_line(record)` to whatever sys.stderr is at the time (so it follows redirections)."""

    def __init__(self, *, debug: bool = False) -> None:
        super().__init__(logging.WARNING)
        self.debug = debug

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(one_line(record, debug=self.debug) + "\n")
            sys.stderr.flush()
        except Exception:  # a log line must never end the command
            self.handleError(record)


def install() -> OneLineHandler:
    """Route every logger (ours and the libraries') through one OneLineHandler on the root logger."""
    handler = OneLineHandler(debug=bool(os.environ.get("KGENTS_DEBUG")))
    logging.getLogger().addHandler(handler)
    return handler


def uninstall(handler: OneLineHandler) -> None:
    logging.getLogger().removeHandler(handler)
