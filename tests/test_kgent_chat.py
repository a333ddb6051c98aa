"""`kgents chat` as a real process on a pipe: each line is answered as it arrives (stdin kept open), and `/status`
counts this session."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from kgents.config import Settings
from tests.helpers import PG_URL, kgents_env

KGENTS = str(Path(sys.executable).with_name("kgents"))
DEADLINE_S = 60.0


class Chat:
    """A `kgents chat` process whose stdin stays open; its stdout read line by line on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [KGENTS, "chat", "--no-dream"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.out.put(line)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, text: str) -> str:
        """The first line holding `text`, within the deadline (the process stays alive and its stdin open)."""
        deadline = time.monotonic() + DEADLINE_S
        seen: list[str] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.out.get(timeout=left)
            except queue.Empty:
                break
            seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not printed within {DEADLINE_S:g} s; printed: {''.join(seen)!r}")


@pytest.fixture
def chat(tmp_path: Path, pg_schema: str) -> Iterator[Chat]:
    settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=pg_schema)
    opened = Chat(kgents_env(settings))
    yield opened
    if opened.proc.poll() is None:
        opened.proc.kill()
    opened.proc.wait(timeout=10)


async def _contents(schema: str) -> list[str]:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(f'SELECT content FROM "{schema}".persona_garden WHERE persona = $1', "kent")  # noqa: S608
        return [r["content"] for r in rows]
    finally:
        await conn.close()


def test_piped_chat_answers_each_line_as_it_arrives(chat: Chat, pg_schema: str) -> None:
    chat.expect("K-gent for kent")  # the banner, before any input
    chat.send("I prefer Blorptastic muffins")
    chat.expect("Noted: I prefer Blorptastic muffins")  # answered while stdin is still open
    assert asyncio.run(_contents(pg_schema)) == ["I prefer Blorptastic muffins"]  # and in the anchor already
    chat.send("I value quiet mornings")
    chat.expect("Noted: I value quiet mornings")
    assert chat.proc.stdin is not None
    chat.proc.stdin.close()  # the end of stdin ends the session
    chat.expect("session saved.")
    assert chat.proc.wait(timeout=DEADLINE_S) == 0


def test_status_counts_this_session(chat: Chat) -> None:
    chat.expect("K-gent for kent (REFLECT, 0 earlier sessions)")
    for line in ("hello", "I prefer Blorptastic muffins", "What do I like?", "I value quiet mornings"):
        chat.send(line)
    chat.send("/status")
    status = chat.expect("interactions")
    assert "interactions 1 (this session included: 4 messages, 2 learned; counted when it ends)" in status, status
    chat.send("/quit")
    assert chat.proc.wait(timeout=DEADLINE_S) == 0


def test_ctrl_c_while_waiting_for_a_line_ends_the_chat(chat: Chat) -> None:
    chat.expect("K-gent for kent")
    chat.proc.send_signal(signal.SIGINT)  # stdin still open: the reader thread must not hold the exit
    assert chat.proc.wait(timeout=DEADLINE_S) == 130


def test_an_open_chat_is_the_homes_server_for_every_other_command(tmp_path: Path) -> None:
    """No server runs: the chat becomes it while it runs, so another process plants, searches and dreams beside it
    (none waits for the index), and what it planted is recalled by the chat."""
    from kgents.home.discovery import home_server
    from tests.helpers import wait_until_sync
    from tests.server_support import cli

    settings = Settings(home=tmp_path / "home")
    chat = Chat(kgents_env(settings))
    try:
        chat.expect("K-gent for kent")
        served = wait_until_sync(
            lambda: home_server(settings), lambda s: s is not None, timeout=DEADLINE_S, what="the server file"
        )
        assert served is not None and served.pid == chat.proc.pid
        planted = cli(settings, "garden", "plant", "My cat is called Zorblax", "--type", "insight")
        assert planted.returncode == 0, planted.stderr
        assert "waiting" not in planted.stderr  # it went through the chat, never waited for the index
        found = cli(settings, "garden", "search", "Zorblax", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["content"] == "My cat is called Zorblax"
        dreamt = cli(settings, "dream", "--json")  # dreamt by the chat's process, for this one
        assert dreamt.returncode == 0 and json.loads(dreamt.stdout)["learned"] == 1, dreamt.stderr
        chat.send("What do you know about Zorblax?")
        chat.expect("My cat is called Zorblax")
        assert chat.proc.stdin is not None
        chat.proc.stdin.close()
        chat.expect("session saved.")
        assert chat.proc.wait(timeout=DEADLINE_S) == 0
        assert home_server(settings) is None  # the server file went with the chat
        err = chat.proc.stderr.read() if chat.proc.stderr else ""
        assert f"kgents chat: serving KGENTS_HOME {settings.home} at {served.url}" in err
    finally:
        if chat.proc.poll() is None:
            chat.proc.kill()
        chat.proc.wait(timeout=10)


def test_sigterm_ends_the_chat_as_the_end_of_stdin_does(tmp_path: Path) -> None:
    from kgents.home.discovery import home_server
    from tests.helpers import wait_until_sync

    settings = Settings(home=tmp_path / "home")
    chat = Chat(kgents_env(settings))
    try:
        chat.expect("K-gent for kent")
        chat.send("I prefer Blorptastic muffins")
        chat.expect("Noted: I prefer Blorptastic muffins")
        wait_until_sync(lambda: home_server(settings), lambda s: s is not None, timeout=DEADLINE_S, what="serving")
        chat.proc.send_signal(signal.SIGTERM)  # stdin still open
        chat.expect("session saved.")
        assert chat.proc.wait(timeout=DEADLINE_S) == 0
        assert home_server(settings) is None
    finally:
        if chat.proc.poll() is None:
            chat.proc.kill()
        chat.proc.wait(timeout=10)
