"""The faces cannot drift apart (issue 19): every public method of `MemoryAPI` is on `Memory`, `AsyncMemory` and
`RemoteMemory` with the same parameters, kinds and defaults (`Memory.recall` once lacked `mode`)."""

from __future__ import annotations

import inspect

import pytest

from kgents import AsyncMemory, Memory, RemoteMemory
from kgents.memory.api import MemoryAPI


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def _parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize("face", [Memory, AsyncMemory, RemoteMemory], ids=lambda c: c.__name__)
def test_every_method_of_the_api_is_on_each_face_alike(face: type) -> None:
    asynchronous, synchronous = _public(MemoryAPI), _public(face)
    missing = sorted(set(asynchronous) - set(synchronous))
    assert not missing, f"{face.__name__} lacks {missing}"
    differ = {
        name: (str(asynchronous[name]), str(synchronous[name]))
        for name in asynchronous
        if _parameters(asynchronous[name]) != _parameters(synchronous[name])
    }
    assert not differ, differ
