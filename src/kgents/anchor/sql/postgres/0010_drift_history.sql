-- A rolling history of coherency and lag samples (AGENTESE time.drift.*), appended by status collection, the ghost
-- daemon and the relay's own measurement (throttled); bounded: each append trims the rows past the newest N.
CREATE TABLE drift_history (
    id               BIGSERIAL PRIMARY KEY,
    measured_at      TIMESTAMPTZ NOT NULL,
    source           TEXT NOT NULL,
    coherency        DOUBLE PRECISION,
    matched          BIGINT,
    stale            BIGINT,
    missing          BIGINT,
    orphaned         BIGINT,
    pending          BIGINT,
    oldest_pending_s DOUBLE PRECISION,
    lag_p50_ms       DOUBLE PRECISION,
    lag_p95_ms       DOUBLE PRECISION
);

-- One row the health probe rewrites to time a real commit on the anchor.
CREATE TABLE health_probe (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at TIMESTAMPTZ,
    beats   BIGINT NOT NULL DEFAULT 0
);
INSERT INTO health_probe (id) VALUES (1);
