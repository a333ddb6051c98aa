"""Persona tokens in the anchor (`kgents.server.tokens`), one suite over both anchors: only a hash is stored, a token
opens exactly its own row while active, revoking is by id or a unique prefix, and forgetting a persona takes its
tokens with it. The CLI (`kgents token create|list|revoke`) over the same rows."""

from __future__ import annotations

import hashlib

import pytest

from kgents.config import Settings
from kgents.errors import NotFoundError, ValidationError
from kgents.garden.store import GardenStore
from kgents.server.tokens import Tokens, token_id_of, tokens_on
from tests.helpers import CliHarness


@pytest.fixture
def tokens(store: GardenStore) -> Tokens:
    return Tokens(tokens_on(store.anchor))


async def test_a_token_opens_its_own_persona_and_only_a_hash_is_kept(tokens: Tokens) -> None:
    record, token = await tokens.create("alice", read_only=True, label="laptop agent")
    assert token.startswith("kgt_") and token_id_of(token) == record.id and len(token) >= 50
    assert (record.persona, record.read_only, record.label, record.active) == ("alice", True, "laptop agent", True)
    found = await tokens.verify(token)
    assert found is not None and (found.id, found.persona, found.read_only) == (record.id, "alice", True)
    stored = await tokens.store.find(record.id)
    assert stored is not None and stored[1] == hashlib.sha256(token.encode()).digest()
    assert token not in repr(stored), "the token itself is never stored"
    assert await tokens.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None, "a wrong secret"
    assert await tokens.verify("kgt_000000000000_" + token[17:]) is None, "an unknown id"
    assert await tokens.verify("not a token at all") is None


async def test_list_revoke_and_prefixes(tokens: Tokens) -> None:
    a, token_a = await tokens.create("alice")
    b, token_b = await tokens.create("bob", read_only=True)
    assert [r.id for r in await tokens.list()] == [a.id, b.id]
    assert [r.id for r in await tokens.list("bob")] == [b.id]
    revoked = await tokens.revoke(a.id[:6].upper())
    assert revoked.id == a.id and not revoked.active and revoked.revoked_at is not None
    assert await tokens.verify(token_a) is None, "a revoked token opens nothing"
    assert await tokens.verify(token_b) is not None
    assert (await tokens.revoke(a.id)).revoked_at == revoked.revoked_at, "revoking twice changes nothing"
    assert [r.active for r in await tokens.list()] == [False, True], "a revoked token is still listed"
    with pytest.raises(NotFoundError):
        await tokens.revoke("ffff" if not a.id.startswith("ffff") and not b.id.startswith("ffff") else "eeee")
    with pytest.raises(ValidationError):
        await tokens.revoke("xyz!")
    with pytest.raises(ValidationError, match="label"):
        await tokens.create("alice", label="two\nlines")


async def test_forgetting_a_persona_takes_its_tokens(store: GardenStore, tokens: Tokens) -> None:
    _, alice = await tokens.create("alice")
    _, bob = await tokens.create("bob")
    await store.forget_persona("alice")
    assert await tokens.verify(alice) is None and [r.persona for r in await tokens.list()] == ["bob"]
    assert await tokens.verify(bob) is not None


def test_the_cli_makes_lists_and_revokes(
    anchor_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = CliHarness(anchor_settings, capsys, monkeypatch)
    code, out, err = cli("token", "create", "--persona", "alice", "--read-only", "--label", "ci")
    assert code == 0 and out.strip().startswith("kgt_") and "shown this once" in err and "read-only" in err
    token = out.strip()
    made = cli.json("token", "create", "-p", "bob")
    assert made["persona"] == "bob" and made["token"].startswith("kgt_") and made["read_only"] is False
    listed = cli.json("token", "list")["tokens"]
    assert [(t["persona"], t["read_only"], t["label"]) for t in listed] == [("alice", True, "ci"), ("bob", False, None)]
    assert all("token" not in t for t in listed), "a listing never shows a token"
    code, out, _ = cli("token", "list")
    assert code == 0 and token not in out and listed[0]["id"] in out
    code, out, _ = cli("token", "revoke", listed[0]["id"])
    assert code == 0 and f"revoked token {listed[0]['id']} of persona alice" in out
    assert cli.json("token", "list", "--persona", "alice")["tokens"][0]["revoked_at"] is not None
    assert cli("token", "revoke", "0000abcd")[0] == 66
    assert cli("token", "create")[0] == 64, "the persona must be named"
