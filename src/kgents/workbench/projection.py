"""The garden's embeddings in two dimensions: PCA (numpy), deterministic signs, a cache, and a character map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Matrix = np.ndarray[Any, np.dtype[np.float32]]


def pca_2d(vectors: Matrix) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Each row projected on the two main axes of the rows, scaled to -1…1; signs fixed so the same data always
    gives the same picture. Fewer than two rows (or no spread) sit at the centre."""
    data = np.asarray(vectors, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 2:
        return np.zeros((data.shape[0] if data.ndim else 0, 2))
    centred = data - data.mean(axis=0)
    _u, _s, vt = np.linalg.svd(centred, full_matrices=False)
    axes = vt[:2]
    for i, axis in enumerate(axes):
        if axis[int(np.argmax(np.abs(axis)))] < 0:
            axes[i] = -axis
    points = centred @ axes.T
    if points.shape[1] < 2:
        points = np.hstack([points, np.zeros((points.shape[0], 2 - points.shape[1]))])
    scale = np.abs(points).max(axis=0)
    scale[scale == 0] = 1.0
    return np.asarray(points / scale, dtype=np.float64)


class ProjectionCache:
    """One projection per set of entry versions: moving between screens never recomputes an unchanged garden."""

    def __init__(self) -> None:
        self._key: tuple[tuple[str, int], ...] | None = None
        self._points: np.ndarray[Any, np.dtype[np.float64]] | None = None

    def get(self, key: tuple[tuple[str, int], ...]) -> np.ndarray[Any, np.dtype[np.float64]] | None:
        return self._points if key == self._key else None

    def put(self, key: tuple[tuple[str, int], ...], points: np.ndarray[Any, np.dtype[np.float64]]) -> None:
        self._key, self._points = key, points


@dataclass(frozen=True, slots=True)
class Cell:
    """One map cell: the index of the entry shown there (the last one to land) and how many landed."""

    entry: int
    count: int


def place(points: np.ndarray[Any, np.dtype[np.float64]], width: int, height: int) -> dict[tuple[int, int], Cell]:
    """(column, row) → cell of a `width` by `height` map for points in -1…1."""
    cells: dict[tuple[int, int], Cell] = {}
    for i, (x, y) in enumerate(points):
        col = round((float(x) + 1.0) / 2.0 * (width - 1))
        row = round((1.0 - (float(y) + 1.0) / 2.0) * (height - 1))
        old = cells.get((col, row))
        cells[(col, row)] = Cell(i, 1 if old is None else old.count + 1)
    return cells


def key_of(ids: Sequence[str], versions: Sequence[int]) -> tuple[tuple[str, int], ...]:
    return tuple(zip(ids, versions, strict=True))
