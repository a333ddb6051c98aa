"""The faces cannot drift apart (issue 19): every public method of `MemoryAPI` is on `Memory`, `AsyncMemory` and
`RemoteMemory` with the same parameters, kinds and defaults (`Memory.recall` once lacked `mode`)."""

from __future__ import annotations

import inspect
import typing

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


def test_memory_is_the_api_method_for_method() -> None:
    """`Memory` is derived from `MemoryAPI`, not written beside it: each method but `close` (`Memory`'s own, which
    stops its loop thread) is the protocol's method made to wait, with the protocol's signature, annotations and
    docstring, and none of them is a coroutine function."""
    api = _public(MemoryAPI)
    for name in sorted(set(api) - {"close"}):
        method, asynchronous = getattr(Memory, name, None), getattr(MemoryAPI, name)
        assert method is not None, f"Memory lacks {name}"
        assert inspect.unwrap(method) is asynchronous, f"Memory.{name} is written by hand, not derived"
        assert inspect.signature(method) == api[name], name
        assert typing.get_type_hints(method) == typing.get_type_hints(asynchronous), name
        assert method.__doc__ == asynchronous.__doc__, name
        assert not inspect.iscoroutinefunction(method), name
    assert not inspect.iscoroutinefunction(Memory.close)
