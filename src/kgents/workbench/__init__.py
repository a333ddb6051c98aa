"""The Alethic Workbench: a live Textual dashboard of the K-gent and the health of its memory (`kgents workbench`).

It reads only through AGENTESE (health, drift history) and the Python face (`MemoryAPI`: soul, entries, recall);
the core never imports it (tests/test_import_hygiene.py).
"""
