-- Which vector index this anchor feeds: a random id stamped into the index's own collection metadata when the
-- collection is made, and where that index is (backend + location, no secrets). A relay, reconcile or search
-- opened over another index refuses instead of draining the outbox into it.
ALTER TABLE synapse_state ADD COLUMN index_id TEXT;
ALTER TABLE synapse_state ADD COLUMN index_location TEXT;

-- Counters every relay and in-process drain adds to at each heartbeat, so `synapse status` shows work done by
-- processes that have ended (a search's drain, a relay killed with -9) too.
CREATE TABLE synapse_totals (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    processed      BIGINT NOT NULL DEFAULT 0,
    retried        BIGINT NOT NULL DEFAULT 0,
    dead           BIGINT NOT NULL DEFAULT 0,
    latency_p50_ms DOUBLE PRECISION,
    latency_p95_ms DOUBLE PRECISION,
    updated_at     TIMESTAMPTZ
);
INSERT INTO synapse_totals (id) VALUES (1);
