-- A rolling history of coherency and lag samples (AGENTESE time.drift.*), appended by status collection, the ghost
-- daemon and the relay's own measurement (throttled); bounded: each append trims the rows past the newest N.
CREATE TABLE drift_history (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    measured_at      TEXT NOT NULL,
    source           TEXT NOT NULL,
    coherency        REAL,
    matched          INTEGER,
    stale            INTEGER,
    missing          INTEGER,
    orphaned         INTEGER,
    pending          INTEGER,
    oldest_pending_s REAL,
    lag_p50_ms       REAL,
    lag_p95_ms       REAL
) STRICT;

-- One row the health probe rewrites to time a real commit on the anchor.
CREATE TABLE health_probe (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at TEXT,
    beats   INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO health_probe (id) VALUES (1);
