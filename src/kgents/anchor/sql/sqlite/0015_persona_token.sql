-- Persona tokens of `kgents serve` (`kgents token create --persona P [--read-only]`): each opens one persona's memory
-- over HTTP and MCP, read-write or read-only. Only the SHA-256 of the token is kept (it is shown once, at creation);
-- a revoked token keeps its row (revoked_at) so `kgents token list` can still say what it was.
CREATE TABLE persona_token (
    id         TEXT PRIMARY KEY CHECK (length(id) = 12),
    persona    TEXT NOT NULL,
    read_only  INTEGER NOT NULL CHECK (read_only IN (0, 1)),
    token_hash BLOB NOT NULL CHECK (length(token_hash) = 32),
    label      TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')),
    revoked_at TEXT
) STRICT;
CREATE INDEX idx_persona_token_persona ON persona_token (persona);
