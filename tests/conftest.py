"""Shared fixtures: real PostgreSQL (a throwaway schema per test) and real SQLite, one suite over both."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from kgents.anchor.postgres import drop_schema
from kgents.config import Settings
from kgents.garden.service import PersonaGarden
from kgents.garden.store import GardenStore, open_store
from tests.helpers import PG_URL, unique_name

ANCHORS = ["sqlite", "postgres"]


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A schema name of its own; dropped (with everything in it) after the test."""
    import asyncio

    name = unique_name("kgents_test")
    yield name
    asyncio.run(drop_schema(PG_URL, name))


@pytest.fixture(params=ANCHORS)
def anchor_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for each anchor backend: SQLite under a temp KGENTS_HOME, PostgreSQL in a throwaway schema."""
    if request.param == "sqlite":
        yield Settings(home=tmp_path / "home")
        return
    schema = request.getfixturevalue("pg_schema")
    yield Settings(home=tmp_path / "home", postgres_url=PG_URL, postgres_schema=schema)


@pytest.fixture
async def store(anchor_settings: Settings) -> AsyncIterator[GardenStore]:
    opened = await open_store(anchor_settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def garden(store: GardenStore) -> PersonaGarden:
    return PersonaGarden(store, "kent")
