"""The JSON shapes the server and RemoteMemory share: what goes out comes back equal, what is malformed is one
ValidationError naming the field, and every error class has a stable code that maps back to itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from kgents.errors import (
    BackendUnavailableError,
    ConfigError,
    ConflictError,
    IndexLockedError,
    KgentsError,
    LifecycleError,
    NotFoundError,
    ValidationError,
)
from kgents.garden.filters import EntryFilter
from kgents.garden.model import EntryType, GardenEntry, Lifecycle, parse_enum
from kgents.memory import wire
from kgents.memory.api import MemoryItem


def test_filters_and_items_round_trip() -> None:
    when = datetime(2024, 3, 1, tzinfo=UTC)
    filters = EntryFilter(
        lifecycles=(Lifecycle.TREE,),
        entry_types=(EntryType.VALUE,),
        tags=("a",),
        min_confidence=0.4,
        text="code",
        observed_after=when,
        include_compost=True,
    )
    assert wire.filter_from_dict(wire.filter_to_dict(filters)) == filters
    assert wire.filter_from_dict(wire.filter_to_dict(EntryFilter())) == EntryFilter()
    item = MemoryItem("x", "VALUE", ("t",), 0.7, when, ("seen",), {"joy": 0.5}, uuid.uuid4())
    again = wire.item_from_dict(wire.item_to_dict(item))
    assert (again.content, again.type, tuple(again.tags), again.observed_at, again.entry_id) == (
        "x",
        "VALUE",
        ("t",),
        when,
        item.entry_id,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lifecycles": "TREE"}, "must be a list"),
        ({"colour": "red"}, "unknown field"),
        ({"observed_after": "2024-03-01T00:00:00"}, "timezone"),
        ({"min_confidence": "high"}, "must be a number"),
        ({"include_compost": "yes"}, "true or false"),
    ],
)
def test_malformed_filters_are_refused_by_name(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        wire.filter_from_dict(data)


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("v"),
        LifecycleError("l"),
        NotFoundError("n"),
        ConflictError("c"),
        ConfigError("f"),
        BackendUnavailableError("b"),
        IndexLockedError("i"),
    ],
)
def test_every_error_maps_back_to_its_class(error: KgentsError) -> None:
    code, status = wire.error_code(error)
    back = wire.error_from_body(status, wire.error_body(code, str(error)))
    assert type(back) is type(error) and str(back) == str(error)


def test_unknown_failures_are_internal_and_401_names_the_token() -> None:
    assert wire.error_code(RuntimeError("boom")) == ("internal", 500)
    assert type(wire.error_from_body(500, {"error": {"code": "internal", "message": "m"}})) is KgentsError
    refused = wire.error_from_body(401, {"error": {"code": "unauthorized", "message": "no"}})
    assert isinstance(refused, BackendUnavailableError) and "KGENTS_SERVER_TOKEN" in str(refused)
    assert wire.jsonable({"a": (1, 2), "b": "s"}) == {"a": [1, 2], "b": "s"}


def test_entries_and_hits_of_an_answer_come_back_equal() -> None:
    entry = GardenEntry(
        persona="kent",
        content="tea, not coffee",
        entry_type=EntryType.PREFERENCE,
        lifecycle=Lifecycle.TREE,
        confidence=0.8,
        eigenvector_affinities={"joy": 0.5},
        evidence=("said so",),
        tags=("drinks",),
        version=3,
        observed_at=datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert wire.entry_from_dict(entry.to_dict()) == entry
    explain = {"dense_rank": 2, "lexical_rank": None, "fused": 0.25}
    hit = wire.hit_from_dict(entry.to_dict() | {"score": 0.25, "explain": explain})
    assert (hit.entry, hit.score, hit.explain) == (entry, 0.25, explain)
    assert wire.hit_from_dict(hit.to_dict()) == hit


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"id": "not-a-uuid"}, "ValueError"),
        ({"lifecycle": "WILTED"}, "ValueError"),
        ({"planted_at": "2024-03-01T00:00:00"}, "timezone"),
        ({"planted_at": 5}, "TypeError"),
        ({"tags": None}, "TypeError"),
        ({"eigenvector_affinities": []}, "AttributeError"),
        ({"version": None}, "TypeError"),
    ],
)
def test_a_malformed_entry_in_an_answer_is_an_error_naming_the_answer(change: dict[str, object], problem: str) -> None:
    data = GardenEntry(persona="kent", content="x", entry_type=EntryType.VALUE).to_dict() | change
    with pytest.raises(KgentsError, match=f"malformed entry.*{problem}"):
        wire.entry_from_dict(data)
    without = {k: v for k, v in data.items() if k != "content"}
    with pytest.raises(KgentsError, match="malformed entry"):
        wire.entry_from_dict(without)


def test_enum_values_are_found_exactly_or_case_insensitively() -> None:
    assert parse_enum(Lifecycle, "TREE", "lifecycle") is Lifecycle.TREE
    assert parse_enum(Lifecycle, " tree ", "lifecycle") is Lifecycle.TREE
    with pytest.raises(ValidationError, match="lifecycle must be one of SEED"):
        parse_enum(Lifecycle, "WILTED", "lifecycle")
