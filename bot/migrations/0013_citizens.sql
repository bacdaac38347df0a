-- Citizens in the loop (issue 17): the people who asked for help, on the channel they used;
-- their requests as they arrived, before the working group makes cases of them; and what a case
-- waits for from its citizen. Names, addresses and texts here are personal data: erased with the
-- case's (bot/domain/erasure.py), never logged.

CREATE TABLE citizens (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL CHECK (channel IN ('telegram', 'messenger')),
    address         TEXT NOT NULL,        -- the Telegram user id, or the page-scoped id (PSID)
    name            TEXT NOT NULL DEFAULT '',
    contact         TEXT NOT NULL DEFAULT '',  -- a phone number they shared
    language        TEXT,                 -- km | en: what they are written to in
    privacy_accepted_at TEXT,             -- the privacy notice, accepted (Telegram intake)
    last_inbound_at TEXT,                 -- their last message to us (Messenger's 24-hour window)
    created_at      TEXT NOT NULL,
    erased_at       TEXT,                 -- their personal data was erased then
    UNIQUE (channel, address)
);

-- A request as it arrived (a page message or comment, a Telegram submission): the working group
-- makes a case of it, or says why not. Its key is the source's own id: a copy changes nothing.
CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE, -- fb:m:<mid>, fb:c:<comment id>, tg:<citizen id>:<n>
    source          TEXT NOT NULL,        -- facebook_message | facebook_comment | telegram
    citizen_id      INTEGER REFERENCES citizens(id),
    received_at     TEXT NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    data            TEXT NOT NULL DEFAULT '{}',  -- files, place, category, comment and post ids
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'case', 'not_request', 'duplicate', 'abusive',
                                      'withdrawn')),
    case_id         INTEGER REFERENCES cases(id),  -- the case made of it, or the one it duplicates
    decided_by      INTEGER,
    decided_at      TEXT,
    reason          TEXT NOT NULL DEFAULT ''       -- required when marked abusive
);
CREATE INDEX requests_pending ON requests(received_at) WHERE status = 'pending';
CREATE INDEX requests_citizen ON requests(citizen_id, status);

ALTER TABLE cases ADD COLUMN citizen_id INTEGER REFERENCES citizens(id);
ALTER TABLE cases ADD COLUMN request_id INTEGER REFERENCES requests(id);
ALTER TABLE cases ADD COLUMN confirmed_via TEXT;  -- citizen | phone: how a confirmed case was verified
CREATE INDEX cases_citizen ON cases(citizen_id) WHERE citizen_id IS NOT NULL;

-- What a case waits for from its citizen (one thing at a time): the unit's question passed on
-- (question), their word on the resolution (confirm), or the reason for their "No" (why_not).
CREATE TABLE citizen_asks (
    case_id         INTEGER PRIMARY KEY REFERENCES cases(id),
    citizen_id      INTEGER NOT NULL REFERENCES citizens(id),
    kind            TEXT NOT NULL CHECK (kind IN ('question', 'confirm', 'why_not')),
    asked_at        TEXT NOT NULL,
    version         INTEGER NOT NULL      -- the case's version when asked: a later change voids it
);
CREATE INDEX citizen_asks_citizen ON citizen_asks(citizen_id);

-- Messages to a citizen on Messenger (kind 'messenger'): to the citizen, not to a Telegram chat.
ALTER TABLE outbox ADD COLUMN citizen_id INTEGER REFERENCES citizens(id);
