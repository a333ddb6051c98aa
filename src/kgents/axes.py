"""The soul's personality axes: below both the soul (its eigenvectors) and the garden (an entry's eigenvector
affinities), which both name them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from kgents.errors import ValidationError, shown


@dataclass(frozen=True, slots=True)
class Axis:
    """One personality axis: its two poles and where a fresh soul starts."""

    name: str
    low: str
    high: str
    default: float


DEFAULT_AXES: tuple[Axis, ...] = (
    Axis("aesthetic", "Minimalist", "Baroque", 0.15),
    Axis("categorical", "Concrete", "Abstract", 0.92),
    Axis("gratitude", "Utilitarian", "Sacred", 0.78),
    Axis("heterarchy", "Hierarchical", "Peer", 0.88),
    Axis("generativity", "Documentation", "Generation", 0.90),
    Axis("joy", "Austere", "Playful", 0.75),
)
AXES: Mapping[str, Axis] = MappingProxyType({a.name: a for a in DEFAULT_AXES})


def unknown_axis(name: object, known: Iterable[str] = AXES) -> ValidationError:
    """The one error for an axis that is not one of `known` (the soul's axes; by default the standard ones), used
    by `soul eigen` and by a garden entry's eigenvector affinities."""
    return ValidationError(f"unknown eigenvector axis {shown(name)}; known axes: {', '.join(known)}")
