"""Opening a PostgreSQL schema: many processes at once, names checked where they enter, collection names that fit,
and a SQL error never reported as "cannot connect"."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from kgents.anchor import postgres as pg
from kgents.config import Settings
from kgents.errors import BackendUnavailableError, SchemaError, ValidationError
from kgents.garden.postgres_store import PostgresGardenStore
from kgents.synapse.runtime import open_stack
from kgents.synapse.state import collection_name, collection_prefix
from tests.helpers import PG_URL

OPENER = """
import asyncio, sys
from kgents.garden.postgres_store import PostgresGardenStore

async def main() -> None:
    print("ready", flush=True)
    sys.stdin.readline()
    store = await PostgresGardenStore.open(sys.argv[1], sys.argv[2], max_size=1)
    await store.close()

asyncio.run(main())
"""


@pytest.mark.slow
def test_thirty_processes_opening_a_fresh_schema_all_succeed(pg_schema: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, PG_URL, pg_schema],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(30)
    ]
    try:
        for proc in procs:  # every process imported and waits: then all open at once
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        failures = []
        for proc in procs:
            if proc.wait(timeout=120) != 0:
                assert proc.stderr is not None
                failures.append(proc.stderr.read().strip().splitlines()[-1:])
        assert failures == [], f"{len(failures)} of 30 failed: {failures[:3]}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.mark.parametrize("bad", ['has"quote', "", "Upper", "x" * 64, "1abc"])
async def test_a_bad_schema_name_passed_to_the_library_is_a_validation_error(bad: str) -> None:
    with pytest.raises(ValidationError, match="schema name"):
        await PostgresGardenStore.open(PG_URL, bad)
    with pytest.raises(ValidationError, match="schema name"):
        await pg.create_pool(PG_URL, bad)
    if bad:
        with pytest.raises(ValidationError, match="schema name"):
            collection_prefix("postgres", bad)


async def test_a_sql_error_while_creating_the_schema_is_not_called_a_connection_failure(pg_schema: str) -> None:
    role = f"kgents_test_role_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_URL)
    try:
        await admin.execute(f'CREATE ROLE "{role}" LOGIN')  # no CREATE on the database: CREATE SCHEMA is refused
        url = PG_URL.replace("postgresql://", f"postgresql://{role}@", 1)
        with pytest.raises(SchemaError, match="cannot create schema") as raised:
            await pg.create_pool(url, pg_schema)
        assert not isinstance(raised.value, BackendUnavailableError)
        assert "cannot connect" not in str(raised.value) and "permission denied" in str(raised.value)
    finally:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


async def test_an_unreachable_server_is_still_a_connection_failure() -> None:
    with pytest.raises(BackendUnavailableError, match="cannot connect"):
        await pg.create_pool("postgresql://127.0.0.1:1/test", "kgents")


def test_collection_names_fit_for_every_schema_name() -> None:
    names = set()
    for schema in ("kgents", "s" * 23, "s" * 24, "s" * 63, "s" * 62 + "t"):
        prefix = collection_prefix("postgres", schema)
        assert len(prefix) <= 30
        names.add(prefix)
        assert len(collection_name(prefix, "a-very-long-embedder-name-" * 4)) <= 64
    assert len(names) == 5, "long names stay apart by their hash"
    assert collection_prefix("postgres", "kgents") == "kgents_garden", "short names keep their old prefix"


async def test_a_63_character_schema_opens_synapse(tmp_path: Path) -> None:
    schema = f"kgents_test_{uuid.uuid4().hex}".ljust(63, "x")
    settings = Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=schema)
    try:
        stack = await open_stack(settings)
        try:
            assert len(stack.state.active.collection) <= 64
        finally:
            await stack.close()
    finally:
        await pg.drop_schema(PG_URL, schema)


def test_the_schema_is_created_once_under_the_lock(pg_schema: str) -> None:
    async def both() -> None:
        await asyncio.gather(*(pg.ensure_schema(PG_URL, pg_schema) for _ in range(8)))

    asyncio.run(both())
