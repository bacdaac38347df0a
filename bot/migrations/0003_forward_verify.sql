-- Forwarding that keeps ownership, verified resolutions, duplicates, bouncing.

ALTER TABLE units ADD COLUMN ack_days INTEGER;               -- institutions: days to acknowledge

ALTER TABLE cases ADD COLUMN outcome TEXT;                   -- confirmed | unreachable | merged
ALTER TABLE cases ADD COLUMN closed_at TEXT;
ALTER TABLE cases ADD COLUMN resolved_by INTEGER;
ALTER TABLE cases ADD COLUMN reopen_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN handoffs INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN bouncing INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN merged_into INTEGER REFERENCES cases(id);
ALTER TABLE cases ADD COLUMN forward_channel TEXT;
ALTER TABLE cases ADD COLUMN their_reference TEXT;
CREATE INDEX cases_bouncing ON cases(bouncing) WHERE bouncing = 1;

-- Further citizens behind one case (from merged duplicates): personal data, like the case's own.
CREATE TABLE case_contacts (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    name        TEXT NOT NULL,
    contact     TEXT NOT NULL DEFAULT '',
    from_case   INTEGER REFERENCES cases(id),
    added_at    TEXT NOT NULL
);
CREATE INDEX case_contacts_case ON case_contacts(case_id);
