"""The PersonaGarden: what a K-gent remembers about its persona, on the anchor (SQLite or PostgreSQL)."""
