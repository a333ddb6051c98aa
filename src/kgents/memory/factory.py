"""Opening the face on the settings: through a server when there is one (KGENTS_SERVER_URL, or a live
`kgents serve` of this KGENTS_HOME), else in this process. Either way the caller gets a `MemoryAPI`."""

from __future__ import annotations

from kgents.config import Settings, check_persona
from kgents.memory.api import MemoryAPI


async def open_memory(settings: Settings | None = None, persona: str | None = None) -> MemoryAPI:
    """`RemoteMemory` when KGENTS_SERVER_URL is set or this home's server runs (it owns the embedded index,
    which no other process can open), else an opened in-process `AsyncMemory`."""
    from kgents.server.discovery import find_server

    settings = settings or Settings.from_env()
    persona = check_persona(persona) if persona else settings.persona
    server = find_server(settings)
    if server is not None:
        from kgents.memory.remote import RemoteMemory

        return RemoteMemory(server, persona)
    from kgents.memory.local import AsyncMemory

    return await AsyncMemory.open(settings, persona)
