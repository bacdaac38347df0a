-- Who read what: every time a case's personal data (the citizen's name and contact, the files)
-- was shown to someone, a row. Nothing of the data itself: when, which case, through what, to whom.
-- Rows are only ever added (kept for good: see README, "Who saw a citizen's data").
CREATE TABLE data_access (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,                  -- UTC
    case_id INTEGER NOT NULL REFERENCES cases(id),
    via TEXT NOT NULL,                 -- card, case (/case), files, export
    who_id INTEGER,                    -- the person's Telegram id; a group's chat id for a card in
                                       -- a group; NULL: the command line
    who_name TEXT NOT NULL,            -- the person's name then; the chat's (its unit's) name; 'casebot CLI'
    chat_id INTEGER,                   -- the chat it was shown in (NULL: a file written by the CLI)
    unit_id INTEGER REFERENCES units(id)  -- the unit whose chat that is (NULL: none, or the working group's)
);
CREATE INDEX data_access_case ON data_access(case_id, id);
CREATE INDEX data_access_at ON data_access(at);
CREATE TRIGGER data_access_no_update BEFORE UPDATE ON data_access
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;
CREATE TRIGGER data_access_no_delete BEFORE DELETE ON data_access
BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END;

-- Whether a posted card shows the citizen's name and contact now: an edit that makes them appear
-- again (the case came back to that chat's unit) is a new view; other edits are not.
ALTER TABLE case_cards ADD COLUMN personal INTEGER NOT NULL DEFAULT 1;
