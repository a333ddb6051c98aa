"""Searchable on return: a write of the face applies its own outbox rows to the index before it returns.

The face claims exactly the rows its write made, through the queue's ordinary claim protocol (a SQLite lease
or PostgreSQL row and entry locks), applies the entries' current rows under the index's version guard, fenced by
that claim, and removes the rows. A `kgents synapse run` relay beside it never applies the same entry at the same
time; a crash in between leaves the rows for the relay (the lease runs out, the transaction rolls back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence

from kgents.anchor.lost import first_line, lost, refused
from kgents.errors import BackendUnavailableError, IndexStorageFullError, NotIndexedError, StorageFullError
from kgents.garden.model import GardenEntry
from kgents.garden.records import Lease
from kgents.garden.service import PersonaGarden
from kgents.resonance.lexical import document_terms
from kgents.synapse.apply import embed
from kgents.synapse.records import ClaimedEvent, EntryState
from kgents.synapse.relay import Relay, RelayConfig
from kgents.synapse.runtime import Stack

INLINE_LEASE_S = 10.0
"""How long an inline claim is exclusive: a process that dies mid-apply leaves its rows to a relay after this."""
SETTLE_TIMEOUT_S = 30.0
"""How long a write waits for rows another relay holds (it is applying them) before giving up."""
SETTLE_CHUNK = 1000
"""Entries applied per claim by `settle`."""
SETTLE_POLL_S = 0.005
PREFILL_TERMS = 512
"""Up to this many entries a write tokenises them while its insert runs (the lexical cache keeps them)."""


class Indexer:
    """Applies a face's own writes to the index inline."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        config = RelayConfig(lease_s=INLINE_LEASE_S, max_attempts=1_000_000, settle_behind=True)
        self.relay: Relay = stack.relay(config)
        self.relay.stats.mode = "inline"

    async def plant(self, garden: PersonaGarden, entries: Sequence[GardenEntry]) -> list[GardenEntry]:
        """Insert the entries with their outbox rows leased to us (one write transaction on SQLite), then apply
        them as written and remove the rows."""
        lease = Lease(self.relay.relay_id, INLINE_LEASE_S)
        # embed and tokenise while the insert runs on the anchor's thread (the apply then finds both cached)
        texts = [e.content for e in entries]
        embedder = self.stack.embedders(self.stack.state.active.embedder)
        inserting = asyncio.ensure_future(garden.plant_many(entries, lease))
        embedding = asyncio.ensure_future(embed(embedder, texts))
        await asyncio.sleep(0)  # the insert is on the anchor's thread, a large batch's embedding on another
        try:
            if len(texts) <= PREFILL_TERMS:
                for text in texts:
                    document_terms(text)
            with contextlib.suppress(Exception):  # only a warm-up: the apply embeds again and reports a failure
                await embedding
        finally:
            stored = await inserting
        leased = [
            ClaimedEvent(e.seq, e.entry_id, e.persona, e.operation.value, e.entry_version, e.created_at, e.attempts)
            for e in lease.leased
        ]
        await self.settle([e.id for e in stored], {e.id: EntryState.of(e) for e in stored}, leased)
        return stored

    async def settle(
        self,
        ids: Sequence[uuid.UUID],
        written: Mapping[uuid.UUID, EntryState] | None = None,
        leased: Sequence[ClaimedEvent] = (),
    ) -> None:
        """Apply the entries' pending rows now; wait for rows another relay is applying. Called once a write has
        committed, so any failure here is a NotIndexedError: the write is kept (its rows stay for a relay), it is
        only not searchable yet; the index down, or the anchor lost on the way (a PostgreSQL restart between the
        write's commit and its claim). A large batch is applied `SETTLE_CHUNK` entries at a time (on PostgreSQL a
        claim takes one lock per entry, and the server's lock table holds only a few thousand)."""
        try:
            await self._settle(ids, written, leased)
        except NotIndexedError:
            raise
        except StorageFullError as exc:
            raise IndexStorageFullError(f"the write is kept but not searchable yet: {exc}") from None
        except Exception as exc:
            if not (isinstance(exc, BackendUnavailableError) or lost(exc) or refused(exc)):
                raise
            raise NotIndexedError(
                f"the write is kept but not searchable yet ({first_line(exc)}); a relay applies it"
            ) from None

    async def _settle(
        self,
        ids: Sequence[uuid.UUID],
        written: Mapping[uuid.UUID, EntryState] | None = None,
        leased: Sequence[ClaimedEvent] = (),
    ) -> None:
        if len(ids) > SETTLE_CHUNK:
            for start in range(0, len(ids), SETTLE_CHUNK):
                part = ids[start : start + SETTLE_CHUNK]
                keep = set(part)
                mine = None if written is None else {i: written[i] for i in part if i in written}
                await self._settle(part, mine, [e for e in leased if e.entry_id in keep])
            return
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        wanted = set(ids)
        while True:
            # the embedded index is ours alone, so its state cannot change under us; elsewhere it is read
            state = self.stack.state if self.stack.in_process else None
            outcome = await self.relay.apply_entries(ids, state, written, leased)
            written, leased = None, ()  # a second round claims afresh and re-reads the truth
            if isinstance(outcome.outage_cause, StorageFullError):
                raise IndexStorageFullError(f"the write is kept but not searchable yet: {outcome.outage_cause}")
            if outcome.outage:
                raise NotIndexedError(
                    f"the vector index is unavailable ({self.relay.stats.last_error}); the write is kept and will be"
                    " searchable once a relay applies it"
                )
            if outcome.retried or outcome.dead:
                raise NotIndexedError(
                    f"the write is kept but its indexing failed ({self.relay.stats.last_error or 'see the relay'});"
                    " a relay retries it"
                )
            if outcome.settled >= wanted or not await self.pending(ids):
                return  # every entry applied by us, or (rows another relay held) by it meanwhile
            if time.monotonic() > deadline:
                raise NotIndexedError(
                    f"the write is kept but stayed unindexed for {SETTLE_TIMEOUT_S:g} s (another relay holds it)"
                )
            await asyncio.sleep(SETTLE_POLL_S)

    async def pending(self, ids: Sequence[uuid.UUID]) -> bool:
        """Whether any outbox row of these entries is still there."""
        return bool(await self.stack.queue.pending_of(ids))
