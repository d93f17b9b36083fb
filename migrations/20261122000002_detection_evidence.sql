-- Evidence the detection engine now reports: the rule version that matched, the built-in
-- detector behind a detector rule, the encoding a match was decoded from, and shadow mode.
ALTER TABLE detections
    ADD COLUMN rule_version INTEGER NOT NULL DEFAULT 1,
    ADD COLUMN detector     TEXT,
    ADD COLUMN decoded_from TEXT,
    ADD COLUMN shadow       BOOLEAN NOT NULL DEFAULT false;
