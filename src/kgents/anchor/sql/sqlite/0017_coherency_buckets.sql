-- Coherency that costs what changed. The garden's ids fall in 4,096 buckets (the id's first three hex digits); a
-- trigger keeps, in the writing transaction, each bucket's entry count and a change counter. The measuring relay
-- keeps what it found per bucket (`coherency_bucket`, with the counter it saw) and re-reads only the buckets whose
-- counter moved or that were not all matched; `synapse_coherency` holds its lease (one relay measures) and the last
-- figure, which status, `/metrics` and `/v1/health` read with its age.
CREATE TABLE garden_digest (
    bucket  TEXT PRIMARY KEY,
    entries INTEGER NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO garden_digest (bucket, entries, changes)
    SELECT substr(id, 1, 3), count(*), 1 FROM persona_garden GROUP BY substr(id, 1, 3);

CREATE TRIGGER garden_digest_insert AFTER INSERT ON persona_garden
BEGIN
    INSERT INTO garden_digest (bucket, entries, changes) VALUES (substr(NEW.id, 1, 3), 1, 1)
        ON CONFLICT (bucket) DO UPDATE SET entries = entries + 1, changes = changes + 1;
END;

CREATE TRIGGER garden_digest_update AFTER UPDATE ON persona_garden
BEGIN
    UPDATE garden_digest SET changes = changes + 1 WHERE bucket = substr(NEW.id, 1, 3);
END;

CREATE TRIGGER garden_digest_delete AFTER DELETE ON persona_garden
BEGIN
    UPDATE garden_digest SET entries = entries - 1, changes = changes + 1 WHERE bucket = substr(OLD.id, 1, 3);
END;

CREATE TABLE coherency_bucket (
    collection TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    changes    INTEGER NOT NULL,
    matched    INTEGER NOT NULL,
    stale      INTEGER NOT NULL,
    missing    INTEGER NOT NULL,
    orphaned   INTEGER NOT NULL,
    PRIMARY KEY (collection, bucket)
) STRICT, WITHOUT ROWID;

CREATE TABLE synapse_coherency (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    lease_until TEXT,
    figures     TEXT CHECK (figures IS NULL OR json_valid(figures)),
    measured_at TEXT,
    measured_by TEXT
) STRICT;
INSERT INTO synapse_coherency (id) VALUES (1);
