"""Library log records (asyncpg's pool, redis, qdrant, httpx) reach stderr as one plain line each: never a traceback
unless KGENTS_DEBUG=1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from kgents.cli import logs
from kgents.config import Settings
from tests.helpers import PG_URL, kgents_env, wait_until


def _record_with_exception(name: str) -> logging.LogRecord:
    try:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)\nsecond line")
    except ConnectionRefusedError:
        exc_info = sys.exc_info()
    return logging.LogRecord(
        name, logging.WARNING, __file__, 1, "Failed to restore the pool connection floor; retrying", (), exc_info
    )


def test_a_record_with_a_traceback_is_one_line() -> None:
    line = logs.one_line(_record_with_exception("asyncpg.pool"))
    assert line.startswith("kgents: warning: asyncpg.pool: Failed to restore the pool connection floor; retrying")
    assert "ConnectionRefusedError" in line and "second line" in line
    assert "\n" not in line and "Traceback" not in line
    debug = logs.one_line(_record_with_exception("asyncpg.pool"), debug=True)
    assert "Traceback" in debug, "KGENTS_DEBUG=1 keeps the traceback"
    assert (
        logs.one_line(
            logging.makeLogRecord(
                {"name": "kgents.synapse", "msg": "relay down", "levelno": 30, "levelname": "WARNING"}
            )
        )
        == "kgents: warning: relay down"
    )


def test_installed_handler_prints_library_records_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    handler = logs.install()
    try:
        logging.getLogger("asyncpg.pool").warning(
            "Failed to restore the pool connection floor; retrying", exc_info=_record_with_exception("x").exc_info
        )
        logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1:6333 200")  # below WARNING: quiet
    finally:
        logs.uninstall(handler)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "asyncpg.pool: Failed to restore" in err


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can be taken down: a restart as the pool sees it, without touching
    the shared server."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(PG_URL.rsplit(":", 1)[1].split("/")[0]))
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def take_down(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()


@pytest.mark.slow
async def test_a_postgres_outage_under_a_running_relay_logs_one_line_per_event(pg_schema: str, tmp_path: Path) -> None:
    proxy = _Proxy()
    await proxy.start()
    url = PG_URL.replace(PG_URL.split("//", 1)[1].split("/", 1)[0], f"127.0.0.1:{proxy.port}")
    env = kgents_env(Settings(home=tmp_path / "home", postgres_url=url, postgres_schema=pg_schema))
    env.pop("KGENTS_DEBUG", None)
    kgents = Path(sys.executable).with_name("kgents")
    relay = await asyncio.create_subprocess_exec(
        str(kgents),
        "synapse",
        "run",
        "--poll",
        "0.2",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert relay.stderr is not None
    lines: list[str] = []
    try:
        watcher = await asyncpg.connect(PG_URL)
        try:
            await wait_until(  # the relay is in its loop: its heartbeat is written
                lambda: _heartbeats(watcher, pg_schema), lambda n: n > 0, timeout=60, what="relay heartbeat"
            )
        finally:
            await watcher.close()
        await proxy.take_down()
        deadline = time.monotonic() + 60
        while not any("Failed to restore the pool connection floor" in line for line in lines):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no pool warning seen; stderr so far: {lines}"
            raw = await asyncio.wait_for(relay.stderr.readline(), remaining)
            assert raw, f"the relay ended early: {lines}"
            lines.append(raw.decode())
    finally:
        if relay.returncode is None:
            relay.send_signal(signal.SIGTERM)
        try:  # the rest of stderr: a traceback would follow the warning's first line
            lines += (await asyncio.wait_for(relay.stderr.read(), 20)).decode().splitlines(keepends=True)
            await asyncio.wait_for(relay.wait(), 20)
        except TimeoutError:
            relay.kill()
            await relay.wait()
    assert not any("Traceback" in line or line.startswith(("  File", "    ")) for line in lines), "".join(lines)
    assert all(line.startswith("kgents: ") for line in lines), "".join(lines)


async def _heartbeats(conn: asyncpg.Connection, schema: str) -> int:
    try:
        return int(await conn.fetchval(f'SELECT count(*) FROM "{schema}".synapse_heartbeat'))  # noqa: S608
    except asyncpg.UndefinedTableError:
        return 0
