"""`kgents chat` (a K-gent session: a prompt with history, or lines from stdin) and `kgents dream`."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from typing import Annotated, TextIO

import typer

from kgents.cli.context import console, print_json, run, state
from kgents.config import Settings
from kgents.errors import KgentsError
from kgents.hypnagogia import DreamResult, HypnagogicCycle
from kgents.kgent import KGent
from kgents.kgent.answer import cite

HELP = "/dream  /mode NAME  /forget ID  /why  /status  /quit"


def describe_dream(result: DreamResult) -> str:
    verb = "would" if result.dry_run else "did"
    shifts = ", ".join(f"{a} {d:+.2f}" for a, d in result.shifts.items()) or "none"
    return (
        f"dream ({verb}): learned {result.learned}, nurtured {result.nurtured}, promoted {len(result.promoted)},"
        f" superseded {result.superseded}, decayed {result.decayed}, composted {len(result.composted)};"
        f" eigenvector shifts: {shifts}"
    )


class PipedLines:
    """Stdin's lines as they arrive (a script or a pipe kept open), read on a daemon thread so that a session
    waiting for the next line never holds up the event loop nor the process's exit."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._pump, args=(loop,), name="kgents-chat-stdin", daemon=True).start()

    def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while line := self._stream.readline():
                loop.call_soon_threadsafe(self._lines.put_nowait, line)
        finally:
            with contextlib.suppress(RuntimeError):  # the loop closed first: nobody waits for more lines
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

    async def next(self) -> str | None:
        """The next line, or None at the end of stdin."""
        return await self._lines.get()


def _ask() -> str | None:
    with contextlib.suppress(ImportError):  # history and line editing for input(), where there is readline
        import readline  # noqa: F401
    try:
        return input("you> ")
    except EOFError:
        return None


async def _command(kg: KGent, line: str) -> bool:
    """Run one slash command; False ends the session."""
    name, _, arg = line[1:].partition(" ")
    arg = arg.strip()
    if name in {"quit", "exit", "q"}:
        return False
    if name == "dream":
        console.print(describe_dream(await HypnagogicCycle(kg.memory).dream()), soft_wrap=True)
    elif name == "mode":
        soul = await kg.set_mode(arg)
        console.print(f"mode: {soul.mode}")
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
        console.print(f"unknown command /{name}; {HELP}")
    return True


async def chat_session(settings: Settings, *, piped: bool, dream: bool = True) -> None:
    """A session on stdin: its lines as they arrive when `piped`, else a prompt."""
    from kgents.kgent.llm import LLM
    from kgents.memory.factory import open_memory

    memory = await open_memory(settings)  # through this home's server when one runs (it owns the index)
    try:
        kg = KGent(memory, LLM.from_settings(settings))
        soul = await kg.open()
        console.print(f"K-gent for {memory.persona} ({soul.mode}, {soul.interactions} earlier sessions). {HELP}")
        feed = PipedLines(sys.stdin) if piped else None
        while True:
            line = await feed.next() if feed is not None else _ask()
            if line is None:
                break
            line = line.strip()
            if not line:
                continue
            if feed is not None:
                console.print(f"you> {line}", markup=False, soft_wrap=True)
            try:
                if line.startswith("/"):
                    if not await _command(kg, line):
                        break
                    continue
                console.print((await kg.observe(line)).text, markup=False, soft_wrap=True)
            except KgentsError as exc:  # one bad command or line does not end the session
                console.print(f"kgents: {exc}", markup=False, soft_wrap=True)
        result = await kg.close(dream=dream)
        console.print("session saved." + (f" {describe_dream(result)}" if result else ""), soft_wrap=True)
    finally:
        await memory.close()


def chat(
    ctx: typer.Context,
    no_dream: Annotated[bool, typer.Option("--no-dream", help="Do not dream when the session ends.")] = False,
) -> None:
    """Talk with the K-gent: it learns what you say and answers from what it remembers (reads stdin if piped)."""
    settings = state(ctx).settings()
    run(lambda: chat_session(settings, piped=not sys.stdin.isatty(), dream=not no_dream))


def dream(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what the dream would do; change nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Consolidate the garden: merge similar entries, decay stale ones, nudge the soul's eigenvectors."""
    from kgents.memory.factory import open_memory

    settings = state(ctx).settings()

    async def work() -> DreamResult:
        memory = await open_memory(settings)
        try:
            return await HypnagogicCycle(memory).dream(dry_run=dry_run)
        finally:
            await memory.close()

    result = run(work)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(describe_dream(result), soft_wrap=True)
