-- The dream's bookkeeping, outside the user's tags and versions (see the SQLite twin for the full story).
-- dream_pending: the entries changed since the last dream, at the version of their last change that counts (a plant,
-- or a change of content, type, tags, evidence, affinities, last nurture or observed time; not a change of
-- confidence or stage alone, such as a decay). dream_state: per persona, the dreams run, the UTC day decay reached,
-- and the lease of a dream in progress.
CREATE TABLE dream_pending (
    persona       TEXT NOT NULL,
    entry_id      UUID NOT NULL,
    entry_version BIGINT NOT NULL,
    PRIMARY KEY (persona, entry_id)
);

CREATE TABLE dream_state (
    persona         TEXT PRIMARY KEY,
    dreams          BIGINT NOT NULL DEFAULT 0,
    dreamt_at       TIMESTAMPTZ,
    decayed_through DATE,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ
);

CREATE INDEX idx_garden_persona_nurtured ON persona_garden (persona, last_nurtured);

-- Statement-level, like the outbox capture: one set-based statement per garden statement.
CREATE FUNCTION dream_capture() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dream_pending (persona, entry_id, entry_version)
            SELECT n.persona, n.id, n.version FROM new_rows n
            ON CONFLICT (persona, entry_id) DO UPDATE SET entry_version = excluded.entry_version;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO dream_pending (persona, entry_id, entry_version)
            SELECT n.persona, n.id, n.version FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE (n.content, n.entry_type, n.tags, n.evidence, n.eigenvector_affinities, n.last_nurtured,
                   n.observed_at)
                IS DISTINCT FROM (o.content, o.entry_type, o.tags, o.evidence, o.eigenvector_affinities,
                                  o.last_nurtured, o.observed_at)
            ON CONFLICT (persona, entry_id) DO UPDATE SET entry_version = excluded.entry_version;
    ELSE
        DELETE FROM dream_pending p USING old_rows o WHERE p.persona = o.persona AND p.entry_id = o.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER dream_capture_insert AFTER INSERT ON persona_garden
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dream_capture();
CREATE TRIGGER dream_capture_update AFTER UPDATE ON persona_garden
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dream_capture();
CREATE TRIGGER dream_capture_delete AFTER DELETE ON persona_garden
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dream_capture();

-- The former dream's tags: what it had not weighed (`dreamt`) is pending; decay goes on from `decayed:<when>`.
INSERT INTO dream_pending (persona, entry_id, entry_version)
    SELECT persona, id, version FROM persona_garden WHERE NOT ('dreamt' = ANY (tags));

INSERT INTO dream_state (persona, decayed_through)
    SELECT g.persona, max(substr(t.tag, 9, 10))::date FROM persona_garden AS g, unnest(g.tags) AS t (tag)
    WHERE t.tag LIKE 'decayed:%' GROUP BY g.persona;
