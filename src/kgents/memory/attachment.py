"""Attaching to a home, as the face sees it (the port; the server provides the adapter).

A long-lived client of an embedded home goes through the home's server, or becomes that server when none runs
(`kgents.server.attach.HomeAttachment`). The face needs that when the server it went through stops, but it sits
below the server: so it names what it needs (`Attachment`) and finds the server's adapter by the package's entry
point (`kgents.attach` in pyproject.toml), never by importing the server."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol

from kgents.config import Settings
from kgents.errors import ConfigError
from kgents.home.owner import Progress
from kgents.memory.api import MemoryAPI

GROUP = "kgents.attach"
"""The entry point group naming the home attachment (one entry, `home`)."""


class Attachment(Protocol):
    """A persona's memory on a home: through its server, or as it; `close()` detaches."""

    async def memory(self) -> MemoryAPI: ...

    async def close(self) -> None: ...


class AttachmentFactory(Protocol):
    def __call__(
        self, settings: Settings, persona: str | None = None, *, progress: Progress | None = None
    ) -> Attachment: ...


def should_attach(settings: Settings) -> bool:
    """Whether a long-lived process should attach to the home (the embedded default, no KGENTS_SERVER_URL): the
    embedded index has one owner. With the real triad, or a server named by URL, it opens the face as usual."""
    return not settings.qdrant_url and not settings.server_url


def attach_home(settings: Settings, persona: str | None, *, progress: Progress | None = None) -> Attachment:
    """The installed home attachment for `persona` (not attached yet: `await attachment.memory()` does)."""
    for entry in entry_points(group=GROUP, name="home"):
        factory: AttachmentFactory = entry.load()
        return factory(settings, persona, progress=progress)
    raise ConfigError(f"kgents is installed without its server (no {GROUP!r} entry point): reinstall kgents")
