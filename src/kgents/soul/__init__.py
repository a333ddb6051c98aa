"""The Soul and the Spark: a K-gent's session state (dialogue mode, eigenvectors), fast and never lost.

`kgents.soul.session.open_soul(settings, soul_id)` is the one call a K-gent needs at start-up: it connects the Spark the
settings name (Redis by KGENTS_REDIS_URL, else the in-process one) and the anchor's snapshot, recovers the
soul, and says where it came from and how long that took. No UI imports here (rich and textual stay in the
CLI and the workbench).
"""
