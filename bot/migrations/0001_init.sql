-- Casebot schema, version 1. Times are UTC ISO-8601 text ("YYYY-MM-DDTHH:MM:SS+00:00").

CREATE TABLE units (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent_id   INTEGER REFERENCES units(id),
    config_chat_id INTEGER,            -- chat_id from the config file
    active      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX units_parent ON units(parent_id);

-- A chat bound with /bindchat wins over the config's chat_id.
CREATE TABLE chat_bindings (
    unit_id     INTEGER PRIMARY KEY REFERENCES units(id),
    chat_id     INTEGER NOT NULL,
    bound_by    INTEGER NOT NULL,
    bound_at    TEXT NOT NULL
);
CREATE INDEX chat_bindings_chat ON chat_bindings(chat_id);

-- The working group's own chat (one row at most).
CREATE TABLE settings_kv (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);

CREATE TABLE categories (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1
);

-- People the bot has seen (Telegram users). No political or similar attribute exists here.
CREATE TABLE people (
    tg_id       INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    username    TEXT,
    language    TEXT,
    first_seen  TEXT NOT NULL,
    last_seen   TEXT NOT NULL
);
CREATE INDEX people_username ON people(username COLLATE NOCASE);

-- Members seen acting in a unit's chat (the roles issue replaces this with invitations).
CREATE TABLE unit_members (
    unit_id     INTEGER NOT NULL REFERENCES units(id),
    tg_id       INTEGER NOT NULL REFERENCES people(tg_id),
    since       TEXT NOT NULL,
    PRIMARY KEY (unit_id, tg_id)
);
CREATE INDEX unit_members_person ON unit_members(tg_id);

CREATE TABLE cases (
    id              INTEGER PRIMARY KEY,       -- the short number shown as #42
    status          TEXT NOT NULL,
    version         INTEGER NOT NULL DEFAULT 1, -- bumped on every change; stale buttons carry an old one
    source          TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    category_id     INTEGER NOT NULL REFERENCES categories(id),
    place_unit_id   INTEGER NOT NULL REFERENCES units(id),
    unit_id         INTEGER REFERENCES units(id),  -- assigned unit, NULL while in the queue
    summary         TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    citizen_name    TEXT NOT NULL DEFAULT '',
    citizen_contact TEXT NOT NULL DEFAULT '',
    priority        TEXT NOT NULL DEFAULT 'normal',
    assignee_id     INTEGER REFERENCES people(tg_id),
    due_at          TEXT,
    resolved_at     TEXT,
    created_by      INTEGER NOT NULL
);
CREATE INDEX cases_unit_status ON cases(unit_id, status);
CREATE INDEX cases_status_due ON cases(status, due_at);

CREATE TABLE attachments (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    kind        TEXT NOT NULL,            -- photo | document
    file_id     TEXT NOT NULL,
    file_name   TEXT,
    purpose     TEXT NOT NULL,            -- intake | evidence
    added_by    INTEGER NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE INDEX attachments_case ON attachments(case_id);

-- The history. Rows are never changed or removed: triggers below refuse it.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    note        TEXT NOT NULL DEFAULT '',
    data        TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_case ON events(case_id, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are immutable'); END;

-- Every message the bot owes someone, written in the same transaction as its cause.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    created_at      TEXT NOT NULL,
    kind            TEXT NOT NULL,        -- text | card | refresh
    chat_id         INTEGER,
    case_id         INTEGER REFERENCES cases(id),
    text            TEXT NOT NULL DEFAULT '',
    payload         TEXT NOT NULL DEFAULT '{}',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    sent_at         TEXT,
    failed_at       TEXT,
    last_error      TEXT
);
CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;

-- Where each case card was posted, so it can be edited in place.
CREATE TABLE case_cards (
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    chat_id     INTEGER NOT NULL,
    message_id  INTEGER NOT NULL,
    unit_id     INTEGER REFERENCES units(id),  -- unit the card was posted for; NULL = working group
    posted_at   TEXT NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX case_cards_case ON case_cards(case_id);
