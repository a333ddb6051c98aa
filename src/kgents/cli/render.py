"""Formatting of garden data for people: small pure functions, and the rich tables built from them."""

from __future__ import annotations

from datetime import UTC, datetime

from rich import box
from rich.table import Table

from kgents.garden.model import GardenEntry, Lifecycle
from kgents.garden.records import AuditRecord

LIFECYCLE_STYLE = {
    Lifecycle.SEED: "dim",
    Lifecycle.SAPLING: "green",
    Lifecycle.TREE: "bold green",
    Lifecycle.FLOWER: "bold magenta",
    Lifecycle.COMPOST: "grey50",
}


def short_id(entry_id: object) -> str:
    return str(entry_id)[:8]


def confidence_bar(confidence: float, width: int = 10) -> str:
    """`0.72 ███████░░░`: the number and a bar of `width` cells."""
    filled = round(confidence * width)
    return f"{confidence:.2f} " + "█" * filled + "░" * (width - filled)


def ago(when: datetime, now: datetime | None = None) -> str:
    """A short relative age: `12s`, `5m`, `3h`, `4d`."""
    seconds = max(0.0, ((now or datetime.now(UTC)) - when).total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_value(value: object) -> str:
    """A metric for people: `-` for unknown, floats to 3 significant digits, big integers with separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def clip(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def entries_table(entries: list[GardenEntry], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("conf", no_wrap=True)
    table.add_column("content", ratio=1, min_width=20)
    table.add_column("tags", max_width=18)
    table.add_column("age", justify="right", no_wrap=True)
    for e in entries:
        table.add_row(
            short_id(e.id),
            e.entry_type.value.lower(),
            f"[{LIFECYCLE_STYLE[e.lifecycle]}]{e.lifecycle.value}[/]",
            f"{e.confidence:.2f}",
            clip(e.content, 80),
            " ".join(e.tags),
            ago(e.nurtured_at),
        )
    return table


def entry_table(entry: GardenEntry) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    affinities = ", ".join(f"{k} {v:.2f}" for k, v in entry.eigenvector_affinities.items()) or "-"
    for label, value in (
        ("id", str(entry.id)),
        ("persona", entry.persona),
        ("type", entry.entry_type.value),
        ("stage", f"[{LIFECYCLE_STYLE[entry.lifecycle]}]{entry.lifecycle.value}[/]"),
        ("confidence", confidence_bar(entry.confidence, 20)),
        ("content", entry.content),
        ("tags", ", ".join(entry.tags) or "-"),
        ("affinities", affinities),
        ("planted", f"{entry.planted_at:%Y-%m-%d %H:%M:%S} UTC ({ago(entry.planted_at)} ago)"),
        ("nurtured", f"{entry.nurtured_at:%Y-%m-%d %H:%M:%S} UTC ({ago(entry.nurtured_at)} ago)"),
        ("version", str(entry.version)),
        ("evidence", "\n".join(f"• {item}" for item in entry.evidence) or "-"),
    ):
        table.add_row(label, value)
    return table


def describe_change(record: AuditRecord) -> str:
    """What one audit record changed, in words: `confidence 0.50 → 0.55, lifecycle SEED → SAPLING`."""
    if record.new is None:
        return "deleted"
    if record.old is None:
        return "planted"
    parts = []
    for field in record.changed_fields():
        if field in ("version", "last_nurtured"):
            continue
        old, new = record.old.get(field), record.new.get(field)
        if field == "evidence" and isinstance(old, list) and isinstance(new, list):
            added = [item for item in new if item not in old]
            parts.append(f"evidence +{len(added)}" if added else "evidence trimmed")
        elif isinstance(old, float | int) and isinstance(new, float | int):
            parts.append(f"{field} {old:.2f} → {new:.2f}")
        else:
            parts.append(f"{field} {clip(str(old), 30)} → {clip(str(new), 30)}")
    return ", ".join(parts) or "nurtured"


def history_table(records: list[AuditRecord], title: str) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("when (UTC)", no_wrap=True)
    table.add_column("op")
    table.add_column("v", justify="right")
    table.add_column("change", overflow="fold")
    for r in records:
        table.add_row(
            f"{r.changed_at:%Y-%m-%d %H:%M:%S}", r.operation.value.lower(), str(r.version), describe_change(r)
        )
    return table
