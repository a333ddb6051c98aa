"""The hypnagogic cycle: the K-gent's dream, consolidating what changed and forgetting what went stale."""

from kgents.hypnagogia.cycle import DreamResult, HypnagogicCycle
from kgents.hypnagogia.run import dream, dream_until_done

__all__ = ["DreamResult", "HypnagogicCycle", "dream", "dream_until_done"]
