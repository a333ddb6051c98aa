"""The hypnagogic cycle: the K-gent's dream, consolidating and forgetting what it learned."""

from kgents.hypnagogia.cycle import DreamResult, HypnagogicCycle

__all__ = ["DreamResult", "HypnagogicCycle"]
