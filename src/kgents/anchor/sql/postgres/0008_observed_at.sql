-- When what an entry says was observed (an imported conversation keeps its date). NULL on rows from before this
-- migration: readers take planted_at then (no backfill, so the audit and outbox triggers stay quiet).
ALTER TABLE persona_garden ADD COLUMN observed_at TIMESTAMPTZ;
CREATE INDEX idx_garden_persona_observed ON persona_garden (persona, (coalesce(observed_at, planted_at)));
