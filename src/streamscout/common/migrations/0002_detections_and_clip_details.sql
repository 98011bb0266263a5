-- What the pipeline needs beyond the spec. All TIMESTAMP columns hold UTC.

-- When a channel refused a clip (403); the monitor reconsiders it after a while.
ALTER TABLE streamers ADD COLUMN clipping_refused_at TIMESTAMP;

-- One row per anomaly, written before Twitch is called: the (broadcaster, bucket) key makes a
-- replayed or resubmitted job find the detection again instead of clipping it twice.
CREATE TABLE detections (
    id BIGSERIAL PRIMARY KEY,
    broadcaster_id BIGINT NOT NULL,
    bucket_start TIMESTAMP NOT NULL,
    detected_at TIMESTAMP NOT NULL,
    message_count INTEGER NOT NULL,
    baseline_mean DOUBLE PRECISION NOT NULL,
    baseline_stddev DOUBLE PRECISION NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    -- pending -> created -> stored, or failed (with failure_reason)
    state VARCHAR(16) NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'created', 'stored', 'failed')),
    clip_id VARCHAR(255),
    create_attempts INTEGER NOT NULL DEFAULT 0,
    failure_reason VARCHAR(64),
    updated_at TIMESTAMP NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    CONSTRAINT detections_broadcaster_bucket_key UNIQUE (broadcaster_id, bucket_start)
);
CREATE INDEX idx_detections_state ON detections(state) WHERE state IN ('pending', 'created');
CREATE INDEX idx_detections_detected_at ON detections(detected_at DESC);

ALTER TABLE clips
    ADD COLUMN detection_id BIGINT UNIQUE REFERENCES detections(id),
    ADD COLUMN score DOUBLE PRECISION,
    ADD COLUMN title TEXT,
    ADD COLUMN duration_seconds REAL,
    ADD COLUMN creator_name VARCHAR(255),
    ADD COLUMN url TEXT;

-- Keyset pagination of the API walks (detected_at, id) newest first.
CREATE INDEX idx_clips_detected_at_id ON clips(detected_at DESC, id DESC);
