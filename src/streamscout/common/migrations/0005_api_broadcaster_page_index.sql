-- The API's pages filtered by streamer walk (broadcaster_id, detected_at, id) newest first, so a
-- quiet channel's page is an index range read, not a scan of every clip in the window.
CREATE INDEX idx_clips_broadcaster_detected_at_id ON clips(broadcaster_id, detected_at DESC, id DESC);
