"""The anchor: the database of truth every capability shares (SQLite embedded, PostgreSQL by URL)."""
