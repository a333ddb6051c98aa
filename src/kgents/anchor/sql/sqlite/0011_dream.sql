-- The dream's bookkeeping, outside the user's tags and versions.
--
-- dream_pending: the entries changed since the last dream (what the next dream looks at, with its neighbours), one
-- row per entry at the version of its last change that counts: a plant, or a change of what it says or how it is
-- held (content, type, tags, evidence, affinities, last nurture, observed time). A change of confidence or stage
-- alone (a decay, a reassessment without evidence, a growth) is not new to the dream. The dream removes the rows it
-- has weighed, at the version it weighed.
CREATE TABLE dream_pending (
    persona       TEXT NOT NULL,
    entry_id      TEXT NOT NULL,
    entry_version INTEGER NOT NULL,
    PRIMARY KEY (persona, entry_id)
) STRICT, WITHOUT ROWID;

-- dream_state: per persona, how many dreams ran and when the last one ended, the UTC day decay was applied
-- through, and the lease of a dream in progress (one dream of a persona at a time).
CREATE TABLE dream_state (
    persona         TEXT PRIMARY KEY,
    dreams          INTEGER NOT NULL DEFAULT 0,
    dreamt_at       TEXT,
    decayed_through TEXT,
    lease_owner     TEXT,
    lease_until     TEXT
) STRICT;

-- Decay finds the entries not nurtured since a day without reading the others.
CREATE INDEX idx_garden_persona_nurtured ON persona_garden (persona, last_nurtured);

CREATE TRIGGER dream_pending_insert AFTER INSERT ON persona_garden
BEGIN
    INSERT OR REPLACE INTO dream_pending (persona, entry_id, entry_version) VALUES (NEW.persona, NEW.id, NEW.version);
END;

CREATE TRIGGER dream_pending_update AFTER UPDATE ON persona_garden
WHEN NEW.content IS NOT OLD.content OR NEW.entry_type IS NOT OLD.entry_type OR NEW.tags IS NOT OLD.tags
    OR NEW.evidence IS NOT OLD.evidence OR NEW.eigenvector_affinities IS NOT OLD.eigenvector_affinities
    OR NEW.last_nurtured IS NOT OLD.last_nurtured OR NEW.observed_at IS NOT OLD.observed_at
BEGIN
    INSERT OR REPLACE INTO dream_pending (persona, entry_id, entry_version) VALUES (NEW.persona, NEW.id, NEW.version);
END;

CREATE TRIGGER dream_pending_delete AFTER DELETE ON persona_garden
BEGIN
    DELETE FROM dream_pending WHERE persona = OLD.persona AND entry_id = OLD.id;
END;

-- The former dream tagged what it had weighed `dreamt` and each decayed entry `decayed:<when>`: what it had not
-- weighed is pending, and decay continues from the last day it reached. The old tags stay as they are.
INSERT INTO dream_pending (persona, entry_id, entry_version)
    SELECT g.persona, g.id, g.version FROM persona_garden AS g
    WHERE NOT EXISTS (SELECT 1 FROM json_each(g.tags) AS t WHERE t.value = 'dreamt');

INSERT INTO dream_state (persona, decayed_through)
    SELECT g.persona, max(substr(t.value, 9, 10)) FROM persona_garden AS g, json_each(g.tags) AS t
    WHERE t.value LIKE 'decayed:%' GROUP BY g.persona;
