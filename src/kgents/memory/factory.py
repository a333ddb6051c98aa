"""Opening the face on the settings: through a server when there is one (KGENTS_SERVER_URL, or a live
`kgents serve` of this KGENTS_HOME), else in this process. Either way the caller gets a `MemoryAPI`."""

from __future__ import annotations

import logging

from kgents.config import Settings, check_persona
from kgents.home.discovery import ServerInfo
from kgents.memory.api import MemoryAPI

log = logging.getLogger("kgents.memory")


async def open_memory(settings: Settings | None = None, persona: str | None = None) -> MemoryAPI:
    """`RemoteMemory` when KGENTS_SERVER_URL is set or this home's server runs (it owns the embedded index,
    which no other process can open), else an opened in-process `AsyncMemory`. While another process owns the
    embedded index for a moment, wait for it (a warning in the log, up to `OWNER_WAIT_S`), as every kgents
    process does."""

    from kgents.home.owner import server_or_own
    from kgents.memory.local import AsyncMemory

    settings = settings or Settings.from_env()
    asked = check_persona(persona) if persona else None
    here = asked or settings.persona
    opened = await server_or_own(settings, lambda: AsyncMemory.open(settings, here), progress=log.warning)
    if isinstance(opened, ServerInfo):
        from kgents.memory.remote import RemoteMemory, persona_of_server

        return RemoteMemory(opened, await persona_of_server(opened, asked, settings.persona), settings=settings)
    return opened
