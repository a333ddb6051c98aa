"""Settings: URLs checked up front, secrets never shown, unreachable servers named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgents.config import Settings, redact_url
from kgents.errors import BackendUnavailableError, ConfigError
from kgents.garden.store import open_store


def test_defaults_are_the_embedded_anchor_under_the_users_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.home == tmp_path / "user" / ".kgents"  # never the working directory
    assert Settings().home == settings.home
    assert settings.persona == "default"
    assert settings.anchor_backend == "sqlite"
    assert settings.describe_anchor() == f"SQLite {tmp_path}/user/.kgents/anchor.db"


def test_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env({"KGENTS_HOME": "rel/home"}).home == tmp_path / "rel" / "home"
    assert Settings.from_env({"KGENTS_HOME": "~/k"}).home == tmp_path / "user" / "k"
    assert Settings(home=Path("x")).home.is_absolute()


def test_environment_then_overrides() -> None:
    env = {"KGENTS_HOME": "/tmp/k", "KGENTS_PERSONA": "kent", "KGENTS_POSTGRES_URL": "postgresql://h/db"}
    settings = Settings.from_env(env, persona="ada", home=None)
    assert settings.home == Path("/tmp/k")
    assert settings.persona == "ada"
    assert settings.anchor_backend == "postgres"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KGENTS_POSTGRES_URL": "mysql://h/db"}, "KGENTS_POSTGRES_URL must start with one of postgresql://"),
        ({"KGENTS_POSTGRES_URL": "postgresql:///db"}, "KGENTS_POSTGRES_URL has no host"),
        ({"KGENTS_POSTGRES_URL": "postgresql://h:99999/db"}, "KGENTS_POSTGRES_URL"),
        ({"KGENTS_REDIS_URL": "http://h"}, "KGENTS_REDIS_URL must start with one of redis://"),
        ({"KGENTS_QDRANT_URL": "qdrant"}, "KGENTS_QDRANT_URL must start with one of http://"),
        ({"KGENTS_POSTGRES_SCHEMA": "Bad-Schema"}, "KGENTS_POSTGRES_SCHEMA must be a lower-case SQL identifier"),
        ({"KGENTS_PERSONA": "two words"}, "persona must be 1-64 characters"),
    ],
)
def test_malformed_settings_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert message in str(caught.value)


def test_password_never_shown() -> None:
    url = "postgresql://kent:s3cret@db.example:5433/garden"
    assert redact_url(url) == "postgresql://kent:***@db.example:5433/garden"
    with pytest.raises(ConfigError) as caught:
        Settings(postgres_url="postgresql://kent:s3cret@db.example:99999/garden")
    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in Settings(postgres_url=url).describe_anchor()


async def test_unreachable_postgres_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, postgres_url="postgresql://kent:s3cret@127.0.0.1:1/test")
    with pytest.raises(BackendUnavailableError) as caught:
        await open_store(settings)
    message = str(caught.value)
    assert message.startswith("KGENTS_POSTGRES_URL: cannot connect to postgresql://kent:***@127.0.0.1:1/test")
    assert "s3cret" not in message and "\n" not in message


async def test_missing_database_is_named(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, postgres_url="postgresql://127.0.0.1:5432/kgents_no_such_db")
    with pytest.raises(BackendUnavailableError, match="the database does not exist"):
        await open_store(settings)


async def test_unwritable_home_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match=f"KGENTS_HOME {blocker / 'home'} cannot be made: Not a directory"):
        await open_store(Settings(home=blocker / "home"))


async def test_lost_postgres_connection_is_one_clear_error_then_recovers(tmp_path: Path, pg_schema: str) -> None:
    import asyncpg

    from kgents.garden.postgres_store import PostgresGardenStore
    from kgents.garden.service import PersonaGarden
    from tests.helpers import PG_URL

    store = await PostgresGardenStore.open(PG_URL, pg_schema, max_size=1)
    try:
        garden = PersonaGarden(store, "kent")
        kept = await garden.plant("Survives a dropped connection", "VALUE")
        pid = await store.anchor.pool.fetchval("SELECT pg_backend_pid()")
        admin = await asyncpg.connect(PG_URL)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        # The pool may notice the dead connection first and replace it; if not, the caller gets one clear error
        # (never a raw driver exception) and the next call runs on a fresh connection.
        try:
            assert await garden.count() == 1
        except BackendUnavailableError as exc:
            assert str(exc).startswith("KGENTS_POSTGRES_URL: lost the connection to PostgreSQL")
        assert (await garden.get(kept.id)).content == "Survives a dropped connection"
    finally:
        await store.close()


def test_server_url_and_token_are_checked_up_front_and_the_token_never_shown() -> None:
    token = "s3cret-token-0123456789"
    settings = Settings.from_env({"KGENTS_SERVER_URL": " http://127.0.0.1:8765/ ", "KGENTS_SERVER_TOKEN": token})
    assert settings.server_url == "http://127.0.0.1:8765" and settings.server_token == token
    assert token not in repr(settings)
    for url in ("ftp://host", "http://", "127.0.0.1:8765", "http://host:99999"):
        with pytest.raises(ConfigError, match="KGENTS_SERVER_URL"):
            Settings.from_env({"KGENTS_SERVER_URL": url})
    for bad in ("short", "has a space in it 0123456789", "é" * 20):
        with pytest.raises(ConfigError, match="KGENTS_SERVER_TOKEN") as caught:
            Settings.from_env({"KGENTS_SERVER_TOKEN": bad})
        assert bad not in str(caught.value)


def test_an_empty_home_is_refused_an_empty_variable_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"KGENTS_HOME \(--home\) is empty"):
        Settings(home="")
    with pytest.raises(ConfigError, match="is empty"):
        Settings.from_env({}, home=" ")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"KGENTS_HOME": ""}).home == tmp_path / ".kgents"  # like every empty KGENTS_* one
