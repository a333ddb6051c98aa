-- Coherency that costs what changed. The garden's ids fall in 4,096 buckets (the id's first three hex digits); a
-- trigger keeps, in the writing transaction, each bucket's entry count and a change counter. The measuring relay
-- keeps what it found per bucket (`coherency_bucket`, with the counter it saw) and re-reads only the buckets whose
-- counter moved or that were not all matched; `synapse_coherency` holds its lease (one relay measures) and the last
-- figure, which status, `/metrics` and `/v1/health` read with its age.
CREATE TABLE garden_digest (
    bucket  TEXT PRIMARY KEY,
    entries BIGINT NOT NULL DEFAULT 0,
    changes BIGINT NOT NULL DEFAULT 0
);
INSERT INTO garden_digest (bucket, entries, changes)
    SELECT left(id::text, 3), count(*), 1 FROM persona_garden GROUP BY left(id::text, 3);

-- Set-based, once per statement; buckets are taken in order so two writers never lock them crosswise.
CREATE FUNCTION garden_digest() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO garden_digest AS d (bucket, entries, changes)
            SELECT left(n.id::text, 3), count(*), count(*) FROM new_rows n GROUP BY 1 ORDER BY 1
            ON CONFLICT (bucket) DO UPDATE
                SET entries = d.entries + excluded.entries, changes = d.changes + excluded.changes;
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE garden_digest d SET changes = d.changes + c.n
            FROM (SELECT left(n.id::text, 3) AS bucket, count(*) AS n FROM new_rows n GROUP BY 1 ORDER BY 1) c
            WHERE d.bucket = c.bucket;
    ELSE
        UPDATE garden_digest d SET entries = d.entries - c.n, changes = d.changes + c.n
            FROM (SELECT left(o.id::text, 3) AS bucket, count(*) AS n FROM old_rows o GROUP BY 1 ORDER BY 1) c
            WHERE d.bucket = c.bucket;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER garden_digest_insert AFTER INSERT ON persona_garden
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_digest();
CREATE TRIGGER garden_digest_update AFTER UPDATE ON persona_garden
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_digest();
CREATE TRIGGER garden_digest_delete AFTER DELETE ON persona_garden
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_digest();

CREATE TABLE coherency_bucket (
    collection TEXT NOT NULL,
    bucket     TEXT NOT NULL,
    changes    BIGINT NOT NULL,
    matched    BIGINT NOT NULL,
    stale      BIGINT NOT NULL,
    missing    BIGINT NOT NULL,
    orphaned   BIGINT NOT NULL,
    PRIMARY KEY (collection, bucket)
);

CREATE TABLE synapse_coherency (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    lease_until TIMESTAMPTZ,
    figures     JSONB,
    measured_at TIMESTAMPTZ,
    measured_by TEXT
);
INSERT INTO synapse_coherency (id) VALUES (1);
