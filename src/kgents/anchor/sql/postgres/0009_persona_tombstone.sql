-- `kgents forget --persona P` removes a persona everywhere it lives and leaves one row here: who, when and how many
-- entries went (and whether their audit rows went too). Nothing of the persona's content is kept.
CREATE TABLE persona_tombstone (
    seq            BIGSERIAL PRIMARY KEY,
    persona        TEXT NOT NULL,
    entries        BIGINT NOT NULL CHECK (entries >= 0),
    purged_history BOOLEAN NOT NULL,
    forgotten_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_persona_tombstone ON persona_tombstone (persona, seq);
