"""The faults `bench/faults.py` replays, one function per item of issue 16 (1-6), each adding a row and its claims
to the report. Real processes throughout: `kgents serve`, PostgreSQL (a private cluster for restarts), tmpfs."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
from bench.faults_kit import ACKNOWLEDGED, IN_DOUBT, KEPT, REFUSED, Report, Row, console, outcome_of, tally
from tests.fault_support import (
    FULL_DISK_WRITER,
    CannotMount,
    fill,
    kill_when_committed,
    small_disk,
    terminate_backends_of,
)
from tests.helpers import kgents_env
from tests.private_pg import Unavailable, private_postgres
from tests.server_support import ServerProcess, cli, start_server

from kgents import Memory
from kgents.anchor.postgres import drop_schema
from kgents.config import Settings
from kgents.home.discovery import read_server_file
from kgents.memory.local import AsyncMemory

PERSONA = "faults"
DONE = (ACKNOWLEDGED, KEPT)


# -- 1: PostgreSQL restarts under a held-open Memory ----------------------------------------------------------------
def restarts(report: Report, base: Path, pg_url: str, writes: int, count: int) -> None:
    try:
        with private_postgres() as cluster:
            settings = Settings(home=base / "home", persona=PERSONA, postgres_url=cluster.url,
                                postgres_schema="faults")  # fmt: skip

            def fault(server: ServerProcess, i: int) -> None:
                if i % 3 == 1:
                    _terminate(cluster.url, server)
                else:
                    cluster.restart("fast" if i % 3 == 0 else "immediate")

            what = f"{count} faults of PostgreSQL (private cluster): restarts fast and immediate, backends terminated"
            _writes_under(report, settings, writes, count, what, fault)
            return
    except Unavailable as exc:
        console.print(f"  no private cluster ({exc}): the server's backends are terminated instead", highlight=False)
    settings = Settings(home=base / "home", persona=PERSONA, postgres_url=pg_url,
                        postgres_schema=f"faults_{uuid.uuid4().hex[:10]}")  # fmt: skip

    try:
        _writes_under(report, settings, writes, count, f"{count} x the server's PostgreSQL backends terminated",
                      lambda server, i: _terminate(pg_url, server))  # fmt: skip
    finally:
        asyncio.run(drop_schema(pg_url, settings.postgres_schema))


def _terminate(url: str, server: ServerProcess) -> None:
    """Terminate every backend serving the server (as a restart drops them), a few times over a second."""

    async def run() -> None:
        admin = await asyncpg.connect(url)
        try:
            for _ in range(10):
                await terminate_backends_of(admin, server.proc.pid)
                await asyncio.sleep(0.1)
        finally:
            await admin.close()

    asyncio.run(run())


def _writes_under(
    report: Report, settings: Settings, writes: int, faults: int, what: str,
    fault: Callable[[ServerProcess, int], None],
) -> None:  # fmt: skip
    server = start_server(settings)
    ops: list[dict[str, Any]] = []
    saw: collections.Counter[str] = collections.Counter()
    try:
        with Memory(PERSONA, settings) as memory:
            faulting = threading.Thread(target=_fault_loop, args=(server, fault, faults), daemon=True)
            faulting.start()
            _write_loop(memory, ops, saw, writes, faulting)
            faulting.join()
            retried = _settle_doubts(memory, ops, saw)
            coherency = _wait_coherent(memory)
            saw.update(getattr(getattr(memory.inner, "_endpoint", None), "stats", {}))
        anchor = asyncio.run(_anchor_pg(settings))
    finally:
        server.stop()
    _judge(report, "1", what, ops, saw, anchor, coherency, retried)


def _fault_loop(server: ServerProcess, fault: Callable[[ServerProcess, int], None], count: int) -> None:
    for i in range(count):
        time.sleep(1.0)
        fault(server, i)


def _write_loop(
    memory: Memory, ops: list[dict[str, Any]], saw: collections.Counter[str], writes: int, faulting: threading.Thread
) -> None:
    rng = random.Random(16)
    live: list[uuid.UUID] = []
    i = 0
    while i < writes or faulting.is_alive():
        i += 1
        if live and rng.random() < 0.2:
            target = live.pop(rng.randrange(len(live)))
            op: dict[str, Any] = {"kind": "forget", "id": target}
            error = _attempt(lambda target=target: memory.forget(target))
        else:
            target, content = uuid.uuid4(), f"restart note {i} {uuid.uuid4().hex[:6]}"
            op = {"kind": "remember", "id": target, "content": content}
            error = _attempt(lambda c=content, t=target: memory.remember(c, entry_id=t))
            if error is None:
                live.append(target)
        op["told"], op["error"] = outcome_of(error), None if error is None else f"{type(error).__name__}: {error}"
        saw[op["told"]] += 1
        ops.append(op)
        time.sleep(0.005)


def _attempt(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


def _settle_doubts(memory: Memory, ops: list[dict[str, Any]], saw: collections.Counter[str]) -> int:
    """Send every write left in doubt again (the same entry id), as a careful client does: it resolves."""
    retried = 0
    for op in ops:
        if op["told"] != IN_DOUBT:
            continue
        retried += 1
        for _ in range(40):
            if op["kind"] == "remember":
                error = _attempt(lambda op=op: memory.remember(op["content"], entry_id=op["id"]))
            else:
                error = _attempt(lambda op=op: memory.forget(op["id"]))
            if outcome_of(error) in DONE:
                op["told"] = "resolved"
                break
            time.sleep(0.5)
    saw["resent (in doubt)"] += retried
    return retried


def _wait_coherent(memory: Memory, timeout_s: float = 90.0) -> dict[str, Any]:
    """Coherency measured by the index's owner until it is 1.0 (the relay catching up) or the deadline."""
    deadline = time.monotonic() + timeout_s
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        inner: Any = memory.inner
        try:
            if hasattr(inner, "synapse_coherency"):
                found = memory._run(inner.synapse_coherency())["coherency"]
            else:
                found = memory._run(inner.synapse.coherency()).to_dict()
        except Exception as exc:
            found = {"error": str(exc)}
        if found.get("coherency_with_truth") == 1.0:
            break
        time.sleep(0.5)
    return found


async def _anchor_pg(settings: Settings) -> dict[uuid.UUID, str]:
    conn = await asyncpg.connect(settings.postgres_url, server_settings={"search_path": settings.postgres_schema})
    try:
        rows = await conn.fetch("SELECT id, content FROM persona_garden WHERE persona = $1", PERSONA)
    finally:
        await conn.close()
    return {r["id"]: r["content"] for r in rows}


def _judge(
    report: Report, item: str, what: str, ops: list[dict[str, Any]], saw: collections.Counter[str],
    anchor: dict[uuid.UUID, str], coherency: dict[str, Any], retried: int,
) -> None:  # fmt: skip
    present: dict[uuid.UUID, bool] = {}
    lost = hidden = 0
    for op in ops:  # in order: the last effect on an id is what the anchor must show
        done = op["told"] in (*DONE, "resolved")
        if op["kind"] == "remember":
            if done:
                present[op["id"]] = True
            elif op["told"] == REFUSED and op["id"] in anchor:  # told "not done", yet stored
                hidden += 1
                print(f"  told not done, yet stored: {op['error']}", file=sys.stderr)
        elif done:
            present[op["id"]] = False
        elif op["told"] == REFUSED and op["id"] not in anchor:  # told "not done", yet deleted
            hidden += 1
            print(f"  told not done, yet deleted: {op['error']}", file=sys.stderr)
    lost = sum(1 for i, want in present.items() if want and i not in anchor)
    lost += sum(1 for i, want in present.items() if not want and i in anchor)
    contents = collections.Counter(anchor.values())
    duplicates = sum(n - 1 for n in contents.values() if n > 1)
    told = collections.Counter(op["told"] for op in ops)
    report.row(Row(
        item, what, tally(told), f"{len(anchor)} entries, {lost} acknowledged lost, {duplicates} duplicates",
        f"{coherency.get('index_points', '?')} points", f"{coherency.get('coherency_with_truth', coherency)}",
        f"{tally(saw)}; {retried} in doubt sent again",
    ))  # fmt: skip
    report.claim(f"item {item}: writes in doubt not reported as such", hidden == 0, f"{hidden} (of {len(ops)})")
    report.claim(f"item {item}: duplicates after retries", duplicates == 0, str(duplicates))
    report.claim(f"item {item}: acknowledged writes kept", lost == 0, f"{lost} lost")
    report.claim(f"item {item}: coherency once settled", coherency.get("coherency_with_truth") == 1.0,
                 str(coherency.get("coherency_with_truth")))  # fmt: skip


# -- 2: forget cut off by a server killed after its DELETE committed ------------------------------------------------
def severed_forgets(report: Report, base: Path, pg_url: str, rounds: int = 3) -> None:
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    settings = Settings(home=base / "home", persona=PERSONA, postgres_url=pg_url, postgres_schema=schema)
    saw: collections.Counter[str] = collections.Counter()
    deletes: list[int] = []
    try:
        for _ in range(rounds):
            server = start_server(settings)
            with Memory(PERSONA, settings) as memory:
                entry = memory.remember("deleted as its server dies")
                killer = kill_when_committed(server, settings, entry.id)
                saw[outcome_of(_attempt(lambda entry=entry: memory.forget(entry.id)))] += 1
                killer.join(60)
                deletes.append(sum(r.operation.value == "DELETE" for r in memory.history(entry.id)))
            server.stop()
        anchor = asyncio.run(_anchor_pg(settings))
    finally:
        asyncio.run(drop_schema(pg_url, schema))
    ok = saw[ACKNOWLEDGED] == rounds and all(n == 1 for n in deletes) and not anchor
    report.row(Row("2", f"{rounds} forgets, each server SIGKILLed after its DELETE committed", tally(saw),
                   f"{len(anchor)} entries; DELETE rows per entry {deletes}", "-", "-",
                   f"{tally(saw)} (it finished each forget in this process, as the home's server)"))  # fmt: skip
    report.claim("item 2: a forget whose server died is carried out once, never 'cannot connect'", ok,
                 f"{saw[ACKNOWLEDGED]}/{rounds} acknowledged, audit DELETEs {deletes}")  # fmt: skip


# -- 3: an update between a remember's insert and its inline claim --------------------------------------------------
async def inline_race(report: Report, base: Path, pg_url: str, count: int = 60) -> None:
    schema = f"faults_{uuid.uuid4().hex[:10]}"
    settings = Settings(home=base / "home", persona=PERSONA, postgres_url=pg_url, postgres_schema=schema)
    try:
        async with await AsyncMemory.open(settings) as memory:
            plant_many = memory.garden.plant_many

            async def planted_then_changed(entries: Any, lease: Any = None) -> Any:
                stored = await plant_many(entries, lease)
                await memory.garden.update(stored[0].id, content=f"{stored[0].content} (changed before the claim)")
                return stored

            memory.garden.plant_many = planted_then_changed  # type: ignore[method-assign]
            for i in range(count):
                await memory.remember(f"race note {i}")
            memory.garden.plant_many = plant_many  # type: ignore[method-assign]
            await memory.synapse.catch_up(30)
            measured = await memory.synapse.coherency()
            pending = await memory.synapse.queue.queue_depth(1000)
    finally:
        await drop_schema(pg_url, schema)
    stale = len(measured.stale_ids)
    report.row(Row("3", f"{count} updates committed between a remember's insert and its claim",
                   f"{count} acknowledged", f"{measured.anchor_entries} entries at version 2, outbox {pending}",
                   f"{measured.index_points} points, {stale} stale", f"{measured.coherency_with_truth}",
                   "-"))  # fmt: skip
    report.claim("item 3: the inline apply never leaves the index stale", stale == 0 and pending == 0,
                 f"{stale} stale, {pending} rows left")  # fmt: skip


# -- 4: the home's server killed under a held-open Memory -----------------------------------------------------------
def killed_server(report: Report, base: Path, calls: int = 60) -> None:
    settings = Settings(home=base / "home", persona=PERSONA)
    first = start_server(settings)
    saw: collections.Counter[str] = collections.Counter()
    acked: list[uuid.UUID] = []
    through: list[str] = []
    second: ServerProcess | None = None
    with Memory(PERSONA, settings) as memory:
        for phase in ("first server", "second server", "no server left"):
            if phase == "second server":  # the first dies, another takes over: the Memory must find it
                first.proc.kill()
                first.proc.wait()
                second = start_server(settings)
            elif phase == "no server left" and second is not None:  # none takes over: the Memory serves
                second.proc.kill()
                second.proc.wait()
            for i in range(calls):
                target = uuid.uuid4()
                error = _attempt(lambda t=target, n=i: memory.remember(f"held-open note {n}", entry_id=t))
                error = error or _attempt(lambda: memory.recall("held-open note", limit=3))
                saw["call ok" if error is None else f"failed: {type(error).__name__}"] += 1
                if error is None:
                    acked.append(target)
                pid = getattr(getattr(memory.inner, "server", None), "pid", None) or "this process"
                if not through or through[-1] != str(pid):
                    through.append(str(pid))
        status = cli(settings, "synapse", "status", "--json", persona=PERSONA)
        coherency = _json_part(status.stdout, "coherency")
        anchor = _anchor_sqlite(settings)
        serving = read_server_file(settings)
    if second is not None and second.proc.poll() is None:
        second.proc.kill()
    missing = sum(1 for i in acked if i not in anchor)
    report.row(Row("4", f"the home's server SIGKILLed under a Memory writing and reading ({calls} calls a phase); a"
                   " second one started, then SIGKILLed too",
                   f"{len(acked)} remembers acknowledged", f"{len(anchor)} entries, {missing} acknowledged lost",
                   f"{coherency.get('index_points', '?')} points", str(coherency.get("coherency_with_truth")),
                   f"{tally(saw)}; went through {' -> '.join(through)}"))  # fmt: skip
    report.claim("item 4: a held-open Memory sees no failed call when its server dies",
                 not [k for k in saw if k.startswith("failed")], tally(saw))  # fmt: skip
    ours = serving is not None and serving["pid"] == os.getpid()
    report.claim("item 4: with no server left it serves the home itself (others go through it)", ours,
                 f"server file pid {serving and serving['pid']}, this process {os.getpid()}")  # fmt: skip


def _json_part(output: str, key: str) -> dict[str, Any]:
    """The object under `key` of a command's JSON output (empty when there is none)."""
    try:
        data = json.loads(output)
    except ValueError:
        return {}
    found = data.get(key) if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


def _anchor_sqlite(settings: Settings) -> dict[uuid.UUID, str]:
    conn = sqlite3.connect(f"file:{settings.home / 'anchor.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, content FROM persona_garden WHERE persona = ?", (PERSONA,)).fetchall()
    finally:
        conn.close()
    return {uuid.UUID(str(r[0])): r[1] for r in rows}


# -- 5: a full disk ----------------------------------------------------------------------------------------------
def full_disk(report: Report, base: Path) -> None:
    try:
        with small_disk(base / "tiny", "5m") as tiny:
            tiny_home = Settings(home=tiny / "home", persona=PERSONA)
            search = cli(tiny_home, "garden", "search", "anything", persona=PERSONA)
        with small_disk(base / "disk", "400m") as disk:
            _filling_disk(report, base, Settings(home=disk / "home", persona=PERSONA), disk)
    except CannotMount as exc:
        report.skipped("5", "a full disk", str(exc))
        return
    line = search.stderr.strip().splitlines()
    report.claim("item 5: a 5 MiB home is one clear line with exit 74", search.returncode == 74 and len(line) == 1,
                 f"exit {search.returncode}: {line[0][:90] if line else ''}…")  # fmt: skip


def _filling_disk(report: Report, base: Path, settings: Settings, disk: Path) -> None:
    signals = base / "signals"
    signals.mkdir(parents=True, exist_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", FULL_DISK_WRITER, str(signals)], env=kgents_env(settings, PERSONA),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    while not (signals / "ready").exists() and writer.poll() is None:
        time.sleep(0.05)
    filler = fill(disk, 256 * 1024)
    (signals / "filled").touch()
    out, _err = writer.communicate(timeout=300)
    filler.unlink()
    told = {uuid.UUID(i): o for i, o in json.loads(out or "[]")}
    anchor = _anchor_sqlite(settings)
    again = cli(settings, "garden", "plant", "written once the disk had room again", persona=PERSONA)
    status = cli(settings, "synapse", "reconcile", "--json", persona=PERSONA)
    found = cli(settings, "garden", "search", "once the disk had room again", "--json", persona=PERSONA)
    coherency = _json_part(status.stdout, "after")
    lost = sum(1 for i, o in told.items() if o in (ACKNOWLEDGED, "kept") and i not in anchor)
    hidden = sum(1 for i, o in told.items() if o == "refused" and i in anchor)
    works = writer.returncode == 0 and again.returncode == 0 and "had room again" in found.stdout
    report.row(Row("5", "a 400 MiB tmpfs home filled under a writer, then space freed",
                   tally(collections.Counter(told.values())),
                   f"{len(anchor)} entries, {lost} acknowledged lost, {hidden} refused yet stored",
                   f"{coherency.get('index_points', '?')} points after", str(coherency.get("coherency_with_truth")),
                   f"writer exit {writer.returncode} (SIGBUS would be -7)"))  # fmt: skip
    report.claim("item 5: nothing acknowledged lost, nothing refused kept", lost == 0 and hidden == 0,
                 f"{lost} lost, {hidden} refused yet stored")  # fmt: skip
    report.claim("item 5: the full-disk home works again once space is freed", works,
                 f"writer exit {writer.returncode}, plant exit {again.returncode}, searchable: {works}")  # fmt: skip


# -- 6: slow clients ------------------------------------------------------------------------------------------------
def slow_clients(report: Report, base: Path) -> None:
    settings = Settings(home=base / "home", persona=PERSONA)
    server = start_server(settings)
    try:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        kinds = [(t, part) for t in (server.token, None) for part in ("head", "body") for _ in range(20)]
        took = asyncio.run(_trickle_all(host, int(port), kinds))
    finally:
        _, _out, err = server.stop()
    longest = collections.defaultdict(float)
    for (token, part), seconds in zip(kinds, took, strict=True):
        key = f"{part}, {'token' if token else 'no token'}"
        longest[key] = max(longest[key], seconds)
    internal = err.count("internal error")
    summary = "; ".join(f"{k}: closed by {v:.1f} s" for k, v in sorted(longest.items()))
    report.row(Row("6", "80 slow-loris connections (1 byte / 2 s), 40 without a token", summary, "-", "-", "-",
                   f"(no Memory) 'internal error' lines in the server's log: {internal}"))  # fmt: skip
    report.claim("item 6: every slow client dropped by its deadline (head 10 s, body 30 s)",
                 max(longest.values()) < 40 and internal == 0, summary)  # fmt: skip


async def _trickle_all(host: str, port: int, kinds: list[tuple[str | None, str]]) -> list[float]:
    return list(await asyncio.gather(*(_trickle(host, port, token, part) for token, part in kinds)))


async def _trickle(host: str, port: int, token: str | None, part: str, every_s: float = 2.0) -> float:
    reader, writer = await asyncio.open_connection(host, port)
    begun = time.monotonic()
    body = b'{"content": "' + b"x" * 100 + b'"}'
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (f"POST /v1/personas/{PERSONA}/memories HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}\r\n\r\n"
            ).encode()  # fmt: skip
    if part == "body":
        writer.write(head)
    trickle = body if part == "body" else head + body
    closed = asyncio.ensure_future(_until_closed(reader))
    try:
        for byte in trickle:
            if closed.done():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait([closed], timeout=every_s)
        await asyncio.wait_for(closed, 120)
        return time.monotonic() - begun
    finally:
        closed.cancel()
        writer.close()


async def _until_closed(reader: asyncio.StreamReader) -> None:
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
