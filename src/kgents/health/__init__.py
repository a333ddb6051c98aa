"""Triad health: one model (levels and reasons from written thresholds), collected from every part at once.

`await collect_health(settings)` gives a `TriadHealth`; `render_prometheus(health)` its Prometheus exposition;
`kgents.health.ghost` writes the ghost files. No UI imports here (`tests/test_import_hygiene.py`).
"""

from kgents.health.collect import collect_health, describe_error, scrub
from kgents.health.levels import DEFAULT_THRESHOLDS, Thresholds
from kgents.health.model import PARTS, SCHEMA_VERSION, Level, PartHealth, TriadHealth, Verdict, parse_level, worst

__all__ = [
    "DEFAULT_THRESHOLDS",
    "PARTS",
    "SCHEMA_VERSION",
    "Level",
    "PartHealth",
    "Thresholds",
    "TriadHealth",
    "Verdict",
    "collect_health",
    "describe_error",
    "parse_level",
    "scrub",
    "worst",
]
