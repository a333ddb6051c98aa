"""The domain model and lifecycle rules: pure, no database."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime

import pytest

from kgents.errors import LifecycleError, ValidationError
from kgents.garden.filters import EntryFilter
from kgents.garden.lifecycle import check_transition, next_stage, promoted, stage_for_confidence
from kgents.garden.model import (
    MAX_CONTENT_CHARS,
    MAX_EVIDENCE_CHARS,
    MAX_EVIDENCE_ITEMS,
    MAX_TAGS,
    EntryType,
    GardenEntry,
    Lifecycle,
)
from kgents.garden.records import GardenQuery, check_id_prefix


def entry(**overrides: object) -> GardenEntry:
    fields: dict[str, object] = {"persona": "kent", "content": "I prefer minimal code", "entry_type": "PREFERENCE"}
    fields.update(overrides)
    return GardenEntry(**fields)  # type: ignore[arg-type]


def test_defaults_and_normalisation() -> None:
    e = entry(entry_type="preference", lifecycle="sapling", tags=[" style ", "code", "style"])
    assert e.entry_type is EntryType.PREFERENCE
    assert e.lifecycle is Lifecycle.SAPLING
    assert e.tags == ("style", "code")
    assert e.version == 1
    assert e.last_nurtured == e.planted_at
    assert e.planted_at.tzinfo is not None


def test_dict_round_trip_keeps_every_field() -> None:
    e = entry(
        confidence=0.73,
        tags=["a", "b"],
        evidence=["said twice", "did it"],
        eigenvector_affinities={"aesthetic": 0.15, "joy": 1.0},
        lifecycle="TREE",
    )
    assert GardenEntry.from_dict(e.to_dict()) == e


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"entry_type": "OPINION"}, "entry_type must be one of PREFERENCE, PATTERN, VALUE, BEHAVIOR, INSIGHT"),
        ({"lifecycle": "BUSH"}, "lifecycle must be one of SEED, SAPLING, TREE, FLOWER, COMPOST"),
        ({"confidence": math.nan}, "confidence must be a number in [0, 1] (got NaN)"),
        ({"confidence": 1.5}, "confidence must be in [0, 1] (got 1.5)"),
        ({"confidence": -0.1}, "confidence must be in [0, 1] (got -0.1)"),
        ({"confidence": "high"}, "confidence must be a number in [0, 1]"),
        ({"confidence": True}, "confidence must be a number in [0, 1]"),
        ({"content": ""}, "content must not be empty or only whitespace"),
        ({"content": " \n\t "}, "content must not be empty or only whitespace"),
        ({"content": "x" * (MAX_CONTENT_CHARS + 1)}, f"the limit is {MAX_CONTENT_CHARS:,}"),
        ({"content": "a\x00b"}, "control character U+0000"),
        ({"content": "bell\x07"}, "control character U+0007"),
        ({"content": "c1 \x85 next line"}, "control character U+0085"),
        ({"content": "bad \udcff byte"}, "content is not valid Unicode"),
        ({"tags": ["t\udcff"]}, "a tag is not valid Unicode"),
        ({"tags": ["t\x1b"]}, "control character U+001B"),
        ({"evidence": ["seen \ud800"]}, "evidence is not valid Unicode"),
        ({"evidence": ["esc \x1b[31m"]}, "control character U+001B"),
        ({"evidence": "one string"}, "evidence must be a list"),
        ({"eigenvector_affinities": {"j\udcffy": 0.5}}, "axis name is not valid Unicode"),
        ({"persona": "kent\n"}, "persona must be 1-64 characters"),
        ({"tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}, f"the limit is {MAX_TAGS}"),
        ({"tags": ["has space"]}, "must not contain spaces"),
        ({"tags": [""]}, "a tag must not be empty"),
        ({"tags": "style"}, "tags must be a list"),
        ({"evidence": ["ok", ""]}, "each evidence item must be non-empty text"),
        ({"evidence": ["e"] * (MAX_EVIDENCE_ITEMS + 1)}, f"the limit is {MAX_EVIDENCE_ITEMS}"),
        ({"evidence": ["e" * (MAX_EVIDENCE_CHARS + 1)]}, "an evidence item is"),
        ({"eigenvector_affinities": {"joy": 2.0}}, "eigenvector affinity 'joy' must be in [0, 1]"),
        ({"eigenvector_affinities": {"joy": math.inf}}, "eigenvector affinity 'joy' must be in [0, 1]"),
        ({"eigenvector_affinities": {"": 0.5}}, "eigenvector axis name"),
        (
            {"eigenvector_affinities": {"joy": 0.5, "bad axis": 0.5}},
            "unknown eigenvector axis 'bad axis'; known axes: aesthetic, categorical, gratitude, heterarchy,"
            " generativity, joy",
        ),
        ({"persona": "has space"}, "persona must be 1-64 characters"),
        ({"persona": ""}, "persona must be 1-64 characters"),
        ({"version": 0}, "version must be a positive integer"),
        ({"id": "not-a-uuid"}, "id must be a UUID"),
        ({"planted_at": datetime(2026, 1, 1)}, "planted_at must be timezone-aware"),
    ],
)
def test_validation_errors_are_precise(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        entry(**overrides)
    assert message in str(caught.value)


def test_from_dict_reports_missing_field() -> None:
    data = entry().to_dict()
    del data["content"]
    with pytest.raises(ValidationError, match="lacks the field 'content'"):
        GardenEntry.from_dict(data)


def test_evolve_bumps_version_and_revalidates() -> None:
    e = entry()
    assert e.evolve(confidence=0.9).version == 2
    with pytest.raises(ValidationError):
        e.evolve(confidence=2.0)


def test_id_accepts_uuid_text() -> None:
    key = uuid.uuid4()
    assert entry(id=str(key)).id == key


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (Lifecycle.SEED, Lifecycle.SAPLING, True),
        (Lifecycle.SEED, Lifecycle.FLOWER, True),
        (Lifecycle.TREE, Lifecycle.SAPLING, False),
        (Lifecycle.FLOWER, Lifecycle.FLOWER, False),
        (Lifecycle.SAPLING, Lifecycle.COMPOST, True),
        (Lifecycle.FLOWER, Lifecycle.COMPOST, True),
        (Lifecycle.COMPOST, Lifecycle.SEED, False),
        (Lifecycle.COMPOST, Lifecycle.TREE, False),
    ],
)
def test_transition_rules(current: Lifecycle, target: Lifecycle, allowed: bool) -> None:
    if allowed:
        assert check_transition(current, target) is target
    else:
        with pytest.raises(LifecycleError):
            check_transition(current, target)


def test_only_revive_leaves_compost_and_only_to_seed() -> None:
    assert check_transition(Lifecycle.COMPOST, Lifecycle.SEED, revive=True) is Lifecycle.SEED
    with pytest.raises(LifecycleError, match="terminal"):
        check_transition(Lifecycle.COMPOST, Lifecycle.SAPLING, revive=True)


def test_next_stage_and_its_ends() -> None:
    assert next_stage(Lifecycle.SEED) is Lifecycle.SAPLING
    assert next_stage(Lifecycle.TREE) is Lifecycle.FLOWER
    with pytest.raises(LifecycleError, match="fully grown"):
        next_stage(Lifecycle.FLOWER)
    with pytest.raises(LifecycleError, match="revive"):
        next_stage(Lifecycle.COMPOST)


@pytest.mark.parametrize(
    ("confidence", "stage"),
    [
        (0.0, Lifecycle.SEED),
        (0.39, Lifecycle.SEED),
        (0.4, Lifecycle.SAPLING),
        (0.7, Lifecycle.TREE),
        (0.9, Lifecycle.FLOWER),
        (1.0, Lifecycle.FLOWER),
    ],
)
def test_stage_for_confidence(confidence: float, stage: Lifecycle) -> None:
    assert stage_for_confidence(confidence) is stage


def test_promotion_never_demotes_and_ignores_compost() -> None:
    assert promoted(Lifecycle.TREE, 0.1) is Lifecycle.TREE
    assert promoted(Lifecycle.SEED, 0.75) is Lifecycle.TREE
    assert promoted(Lifecycle.COMPOST, 0.95) is Lifecycle.COMPOST


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_confidence": 3}, "min_confidence must be in [0, 1]"),
        ({"lifecycles": "SEED"}, "lifecycles must be a list"),
        ({"entry_types": "VALUE"}, "entry_types must be a list"),
        ({"lifecycles": ["BUSH"]}, "lifecycles must be one of"),
        ({"tags": "abc"}, "tags must be a list"),
        ({"tags": ["\udcff"]}, "a tag is not valid Unicode"),
        ({"text": "bad \udcff"}, "the text filter is not valid Unicode"),
    ],
)
def test_filter_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        EntryFilter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"limit": 0}, "limit must be between 1"), ({"offset": -1}, "offset must not be negative")],
)
def test_page_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        GardenQuery(**kwargs)  # type: ignore[arg-type]


def test_id_prefix_validation() -> None:
    with pytest.raises(ValidationError, match="an id prefix holds only hex digits"):
        check_id_prefix("zz'; drop")


def test_time_is_utc() -> None:
    assert entry().planted_at.utcoffset() == UTC.utcoffset(None)


def test_affinities_stored_before_axes_were_checked_survive_other_changes() -> None:
    legacy = entry(eigenvector_affinities={"joy": 0.5})
    object.__setattr__(legacy, "eigenvector_affinities", {"joy": 0.5, "bad axis": 0.2})  # as a store reads it back
    nurtured = legacy.evolve(confidence=0.9)
    assert nurtured.eigenvector_affinities == {"joy": 0.5, "bad axis": 0.2} and nurtured.version == legacy.version + 1
    assert legacy.evolve(eigenvector_affinities={"joy": 0.1}).eigenvector_affinities == {"joy": 0.1}
    with pytest.raises(ValidationError, match="unknown eigenvector axis 'bad axis'"):
        legacy.evolve(eigenvector_affinities={"bad axis": 0.1})
    with pytest.raises(ValidationError, match="confidence must be in"):
        legacy.evolve(confidence=2.0)  # everything else is still checked
