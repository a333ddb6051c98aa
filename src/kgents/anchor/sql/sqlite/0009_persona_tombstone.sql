-- `kgents forget --persona P` removes a persona everywhere it lives and leaves one row here: who, when and how many
-- entries went (and whether their audit rows went too). Nothing of the persona's content is kept.
CREATE TABLE persona_tombstone (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    persona        TEXT NOT NULL,
    entries        INTEGER NOT NULL CHECK (entries >= 0),
    purged_history INTEGER NOT NULL CHECK (purged_history IN (0, 1)),
    forgotten_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
) STRICT;
CREATE INDEX idx_persona_tombstone ON persona_tombstone (persona, seq);
