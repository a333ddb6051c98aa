-- The PersonaGarden, its outbox (for the Synapse relay) and its audit trail, kept by one trigger.
CREATE TABLE persona_garden (
    id                     UUID PRIMARY KEY,
    persona                TEXT NOT NULL,
    content                TEXT NOT NULL CHECK (length(btrim(content)) > 0),
    entry_type             TEXT NOT NULL CHECK (entry_type IN ('PREFERENCE', 'PATTERN', 'VALUE', 'BEHAVIOR', 'INSIGHT')),
    lifecycle              TEXT NOT NULL CHECK (lifecycle IN ('SEED', 'SAPLING', 'TREE', 'FLOWER', 'COMPOST')),
    confidence             DOUBLE PRECISION NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    planted_at             TIMESTAMPTZ NOT NULL,
    last_nurtured          TIMESTAMPTZ NOT NULL,
    eigenvector_affinities JSONB NOT NULL DEFAULT '{}'::jsonb,
    evidence               TEXT[] NOT NULL DEFAULT '{}',
    tags                   TEXT[] NOT NULL DEFAULT '{}',
    version                BIGINT NOT NULL DEFAULT 1 CHECK (version >= 1)
);
CREATE INDEX idx_garden_persona_lifecycle ON persona_garden (persona, lifecycle);
CREATE INDEX idx_garden_persona_confidence ON persona_garden (persona, confidence DESC, id);
CREATE INDEX idx_garden_persona_type ON persona_garden (persona, entry_type);
CREATE INDEX idx_garden_tags ON persona_garden USING GIN (tags);

CREATE TABLE garden_outbox (
    seq             BIGSERIAL PRIMARY KEY,
    entry_id        UUID NOT NULL,
    persona         TEXT NOT NULL,
    operation       TEXT NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    entry_version   BIGINT NOT NULL,
    payload         JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    last_error      TEXT
);
CREATE INDEX idx_outbox_due ON garden_outbox (next_attempt_at, seq);
CREATE INDEX idx_outbox_entry ON garden_outbox (entry_id);

CREATE TABLE garden_audit (
    seq           BIGSERIAL PRIMARY KEY,
    entry_id      UUID NOT NULL,
    persona       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    entry_version BIGINT NOT NULL,
    old_row       JSONB,
    new_row       JSONB,
    changed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX idx_audit_entry ON garden_audit (persona, entry_id, seq);

-- Identity never changes and every update bumps the version by exactly one: the relay's version guard relies on it.
CREATE FUNCTION garden_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.persona <> OLD.persona THEN
        RAISE EXCEPTION 'the id and persona of a garden entry never change' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.version <> OLD.version + 1 THEN
        RAISE EXCEPTION 'a garden update must set version to % (got %)', OLD.version + 1, NEW.version
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER garden_guard BEFORE UPDATE ON persona_garden FOR EACH ROW EXECUTE FUNCTION garden_guard();

-- Statement-level capture with transition tables: one set-based INSERT per statement into the outbox and the audit,
-- and one NOTIFY, so a 10,000-row plant_many costs three statements instead of 20,000 row-level trigger calls.
CREATE FUNCTION garden_capture() RETURNS trigger LANGUAGE plpgsql SET search_path = {{schema}}, pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
            SELECT n.id, n.persona, 'INSERT', n.version, to_jsonb(n) FROM new_rows n;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT n.id, n.persona, 'INSERT', n.version, NULL, to_jsonb(n) FROM new_rows n;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
            SELECT n.id, n.persona, 'UPDATE', n.version, to_jsonb(n) FROM new_rows n;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT n.id, n.persona, 'UPDATE', n.version, to_jsonb(o), to_jsonb(n)
            FROM new_rows n JOIN old_rows o ON o.id = n.id;
    ELSE
        INSERT INTO garden_outbox (entry_id, persona, operation, entry_version, payload)
            SELECT o.id, o.persona, 'DELETE', o.version, NULL FROM old_rows o;
        INSERT INTO garden_audit (entry_id, persona, operation, entry_version, old_row, new_row)
            SELECT o.id, o.persona, 'DELETE', o.version, to_jsonb(o), NULL FROM old_rows o;
    END IF;
    PERFORM pg_notify('kgents_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END $$;
CREATE TRIGGER garden_capture_insert AFTER INSERT ON persona_garden
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_capture();
CREATE TRIGGER garden_capture_update AFTER UPDATE ON persona_garden
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_capture();
CREATE TRIGGER garden_capture_delete AFTER DELETE ON persona_garden
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION garden_capture();
