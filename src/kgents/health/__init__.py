"""Triad health: one model (levels and reasons from written thresholds), collected from every part at once.

`await collect_health(settings)` gives a `TriadHealth`; `render_prometheus(health)` its Prometheus exposition;
`kgents.health.ghost` writes the ghost files. No UI imports here (`tests/test_import_hygiene.py`).
"""
