-- Versions never go backwards for an id, across deletes: a deleted entry leaves a tombstone with its last version,
-- and an entry planted again under that id continues from it (the store reads the tombstone; the guard below
-- refuses any insert that would not). The index's version guard then lets the new row overwrite whatever a relay
-- wrote for the old one, and a stale write of the old row can never pass for the new one.
CREATE TABLE garden_tombstone (
    id           TEXT PRIMARY KEY,
    last_version INTEGER NOT NULL,
    deleted_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now'))
) STRICT, WITHOUT ROWID;

CREATE TRIGGER garden_tombstone_delete AFTER DELETE ON persona_garden
BEGIN
    INSERT OR REPLACE INTO garden_tombstone (id, last_version)
        VALUES (OLD.id, max(OLD.version, coalesce((SELECT last_version FROM garden_tombstone WHERE id = OLD.id), 0)));
END;

CREATE TRIGGER garden_version_floor BEFORE INSERT ON persona_garden
WHEN NEW.version <= (SELECT last_version FROM garden_tombstone WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'a garden entry planted again under a deleted id must continue its old version');
END;
