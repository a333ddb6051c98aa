"""`kgents chat`: a K-gent session (a prompt with history, or lines from stdin), and the dream when it ends.

Like `kgents mcp`, on the embedded default a chat goes through the home's server when one runs, and when none does
it becomes that server for as long as it runs (it owns the index, relays in-process, and listens on a free
loopback port named in the home's server file), so every other command of the home works beside an open chat.
The lines are read on a thread, so the event loop (and the server on it) never waits for the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Annotated, TextIO

import typer

from kgents.cli.context import console, run, state
from kgents.cli.dream_cmd import describe_dream, dream_with_progress
from kgents.cli.index_access import tell
from kgents.config import Settings
from kgents.errors import KgentsError
from kgents.kgent import KGent
from kgents.kgent.answer import cite
from kgents.memory.api import MemoryAPI

HELP = "/dream  /mode NAME  /forget ID  /why  /status  /quit"
PROMPT = "you> "

MemorySource = Callable[[], Awaitable[MemoryAPI]]
"""The memory to use now (through the home's server, or this process's own as the server; it may change when the
server a chat went through stops)."""


class Lines:
    """The user's lines, read one at a time on a daemon thread when the session asks for the next one: a prompt
    never shows before the answer to the line before it, a session waiting for a line never holds up the event
    loop (nor the server on it), and a thread blocked in a read never holds up the process's exit."""

    def __init__(self, stream: TextIO, *, prompt: bool) -> None:
        self._stream = stream
        self._prompt = prompt
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._wanted = threading.Semaphore(0)
        self._ended = False
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, args=(loop,), name="kgents-chat-stdin", daemon=True).start()

    def _read(self) -> str | None:
        if not self._prompt:
            return self._stream.readline() or None
        try:
            return input(PROMPT)
        except EOFError:
            return None

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        line: str | None = ""
        try:
            while line is not None:
                self._wanted.acquire()
                line = self._read()
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody waits for more lines
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def next(self) -> str | None:
        """The next line, or None at the end of stdin (or once `end()` was called)."""
        if self._ended:
            return None
        self._wanted.release()
        line = await self._lines.get()
        if line is None:
            self._ended = True
        return line

    def end(self) -> None:
        """End the session as the end of stdin would (SIGTERM)."""
        self._ended = True
        self._lines.put_nowait(None)


def _readline_history() -> None:
    with contextlib.suppress(ImportError):  # history and line editing for input(), where there is readline
        import readline  # noqa: F401


async def _command(kg: KGent, line: str) -> bool:
    """Run one slash command; False ends the session."""
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name in {"quit", "exit", "q"}:
        return False
    if name == "dream":
        console.print(describe_dream(await dream_with_progress(kg.memory)), soft_wrap=True)
    elif name == "mode":
        soul = await kg.set_mode(arg)
        console.print(f"mode: {soul.mode}", markup=False)
    elif name == "forget":
        entry = await kg.memory.get(arg)
        await kg.memory.forget(entry.id)
        console.print(f"forgot {cite(entry)} {entry.content}", markup=False, soft_wrap=True)
    elif name == "why":
        cited = kg.why()
        for e in cited:
            console.print(
                f"{cite(e)} {e.entry_type.value} {e.lifecycle.value} {e.confidence:.2f} {e.content}",
                markup=False,
                soft_wrap=True,
            )
        if not cited:
            console.print("the last reply used no entries")
    elif name == "status":
        soul = await kg.memory.soul()
        live = len(await kg.memory.list(limit=10_000))
        console.print(  # the soul counts a session when it ends: this one is shown counted already
            f"persona {kg.memory.persona}; mode {soul.mode}; {live} live entries; interactions"
            f" {soul.interactions + 1} (this session included: {kg.messages} messages, {len(kg.learned)} learned;"
            " counted when it ends)",
            soft_wrap=True,
        )
    else:
        console.print(f"unknown command /{name}; {HELP}", markup=False, soft_wrap=True)
    return True


async def converse(memory_of: MemorySource, settings: Settings, *, piped: bool, dream: bool = True) -> None:
    """A session on stdin: its lines as they arrive when `piped`, else a prompt; then the soul saved and a dream."""
    from kgents.kgent.llm import LLM

    if not piped:
        _readline_history()
    kg = KGent(await memory_of(), LLM.from_settings(settings))
    soul = await kg.open()
    banner = f"K-gent for {kg.memory.persona} ({soul.mode}, {soul.interactions} earlier sessions). {HELP}"
    console.print(banner, markup=False, soft_wrap=True)
    lines = Lines(sys.stdin, prompt=not piped)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lines.end)
    try:
        while (line := await lines.next()) is not None:
            line = line.strip()
            if not line:
                continue
            if piped:
                console.print(f"{PROMPT}{line}", markup=False, soft_wrap=True)
            try:
                kg.memory = await memory_of()
                if line.startswith("/"):
                    if not await _command(kg, line):
                        break
                    continue
                console.print((await kg.observe(line)).text, markup=False, soft_wrap=True)
            except KgentsError as exc:  # one bad command or line does not end the session
                console.print(f"kgents: {exc}", markup=False, soft_wrap=True)
        kg.memory = await memory_of()
        await kg.close()
        result = await dream_with_progress(kg.memory) if dream else None
        console.print("session saved." + (f" {describe_dream(result)}" if result else ""), soft_wrap=True)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def chat_session(settings: Settings, *, piped: bool, dream: bool = True) -> None:
    """Through the home's server, or as it (the embedded default); else the memory the settings name."""
    from kgents.memory.attachment import attaches
    from kgents.memory.factory import open_memory
    from kgents.server.attach import HomeAttachment

    def serving(url: str) -> None:
        tell(f"kgents chat: serving KGENTS_HOME {settings.home} at {url} for its other kgents processes")

    if attaches(settings):
        async with HomeAttachment(settings, progress=tell, serving=serving) as home:
            await converse(home.memory, settings, piped=piped, dream=dream)
        return
    memory = await open_memory(settings)  # the real triad, or the server KGENTS_SERVER_URL names

    async def fixed() -> MemoryAPI:
        return memory

    try:
        await converse(fixed, settings, piped=piped, dream=dream)
    finally:
        await memory.close()


def chat(
    ctx: typer.Context,
    no_dream: Annotated[bool, typer.Option("--no-dream", help="Do not dream when the session ends.")] = False,
) -> None:
    """Talk with the K-gent: it learns what you say and answers from what it remembers (reads stdin if piped).

    On the embedded default the chat goes through this home's server when one runs; when none does, it becomes
    that server while it runs (one line on stderr says where), so every other kgents command of the home works
    beside it."""
    settings = state(ctx).settings()
    run(lambda: chat_session(settings, piped=not sys.stdin.isatty(), dream=not no_dream))
