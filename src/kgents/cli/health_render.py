"""The triad's health for people: the seed's layout (a section per part, levels coloured). Pure formatting."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from kgents.health.levels import DEFAULT_THRESHOLDS
from kgents.health.model import Level, PartHealth, TriadHealth

LEVEL_STYLE = {
    Level.THRIVING: "bold green",
    Level.HEALTHY: "green",
    Level.STRAINED: "yellow",
    Level.DEGRADED: "bold dark_orange",
    Level.CRITICAL: "bold red",
    Level.UNKNOWN: "magenta",
}
TITLES = {"durability": "Durability", "resonance": "Resonance", "reflex": "Reflex", "synapse": "Synapse CDC"}
HEAD_WIDTH = 30


def fmt_ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


def fmt_s(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def fmt_pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.0f} %"


def fmt_int(value: Any) -> str:
    return "-" if value is None else f"{int(value):,}"


def fmt_rate(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.0f}"


def fmt_bytes(value: Any) -> str:
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def detail_lines(part: PartHealth) -> list[str]:
    """The figures that matter for one part, as the seed shows them."""
    f = part.figures
    if part.error:
        return [f"Error: {part.error}"]
    if part.name == "durability":
        pool = "-" if f.get("pool_available") is None else f"{fmt_pct(f['pool_available'])} free of {f['pool_max']}"
        return [
            f"Commit latency: {fmt_ms(f.get('commit_ms'))}{' (read-only: a read)' if f.get('read_only') else ''}",
            f"Pool: {pool}",
            f"Pending CDC events: {fmt_int(f.get('pending_events'))}",
            f"Database size: {fmt_bytes(f.get('database_bytes'))}",
        ]
    if part.name == "resonance":
        if f.get("coherency_with_truth") is None:
            return []
        counts = " · ".join(f"{fmt_int(f.get(k))} {k}" for k in ("matched", "stale", "missing", "orphaned"))
        age = "" if not f.get("age_s") else f", {fmt_s(f['age_s'])} old"
        return [
            f"Coherency: {fmt_pct(f['coherency_with_truth'])} ({counts}{age})",
            f"Search latency: {fmt_ms(f.get('search_ms'))}",
            f"Entries indexed: {fmt_int(f.get('entries_indexed'))} ({f.get('index_state') or '-'})",
        ]
    if part.name == "reflex":
        if not part.configured:
            return []
        memory = f"{fmt_bytes(f.get('memory_used_bytes'))} / {fmt_bytes(f.get('memory_max_bytes'))}"
        few = " (too few to judge)" if (f.get("lookups") or 0) < DEFAULT_THRESHOLDS.min_lookups else ""
        return [
            f"Hit rate: {fmt_pct(f.get('hit_rate'))} of {fmt_int(f.get('lookups'))} lookups{few}",
            f"Memory: {memory if f.get('memory_max_bytes') else fmt_bytes(f.get('memory_used_bytes')) + ' (no limit)'}",
            f"Commands/sec: {fmt_rate(f.get('commands_per_s'))}",
            f"Latency: {fmt_ms(f.get('latency_ms'))}",
        ]
    if part.name == "synapse":
        return [
            f"Events processed: {fmt_int(f.get('events_processed'))} · dead letters {fmt_int(f.get('dead_letters'))}",
            f"Lag: p50 {fmt_ms(f.get('lag_p50_ms'))}, p95 {fmt_ms(f.get('lag_p95_ms'))}"
            f" · oldest pending {fmt_s(f.get('oldest_pending_s'))}",
            f"Relays alive: {fmt_int(f.get('relays_alive'))} · heartbeat {fmt_s(f.get('heartbeat_age_s'))} ago"
            f" · circuit {f.get('circuit') or '-'}",
        ]
    return []


def render_part(part: PartHealth) -> Text:
    head = f"  {TITLES.get(part.name, part.name)} ({part.backend}):"
    text = Text(f"{head:<{HEAD_WIDTH}}")
    text.append(part.level.value, style=LEVEL_STYLE[part.level])
    lines = detail_lines(part)
    if part.level not in (Level.THRIVING,) and not part.error:
        lines = [part.reason, *lines]
    for line in lines:
        text.append(f"\n    - {line}")
    return text


def render_triad(health: TriadHealth) -> Text:
    """`Database Triad Health:`, a section per part, and the verdict with its reason."""
    text = Text("Database Triad Health:\n")
    for part in health.parts:
        text.append_text(render_part(part))
        text.append("\n\n")
    verdict = health.verdict
    text.append("  Overall: ")
    text.append(verdict.level.value, style=LEVEL_STYLE[verdict.level])
    text.append(f" ({verdict.reason})")
    return text


def render_summary(health: TriadHealth, line: str) -> Text:
    """One line: the status-bar line and the reason."""
    text = Text()
    text.append(line, style=LEVEL_STYLE[health.level])
    text.append(f"  {health.verdict.reason}")
    return text
