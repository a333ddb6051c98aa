-- The Soul's durable snapshot: the Spark (Redis or in-process) is the fast copy, this row is the truth.
-- `revision` counts saves; a write lands only over the revision it read (compare-and-set), so concurrent savers
-- never overwrite each other silently.
CREATE TABLE soul_snapshot (
    persona    TEXT NOT NULL,
    soul_id    TEXT NOT NULL,
    revision   BIGINT NOT NULL CHECK (revision >= 1),
    state      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (persona, soul_id)
);
