-- The inbox: every update is stored here, committed, before it is confirmed to its source
-- (Telegram's getUpdates offset, a webhook's 200), and handled from here.
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,          -- the source's own id: 'tg:<update_id>'; a second copy is ignored
    chat_key TEXT NOT NULL,            -- one chat's updates are handled one at a time, in order
    payload TEXT,                      -- the update as it came (JSON); emptied once handled
    received_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'parked')),
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,                        -- why it was parked: an error's type and where, no user text
    done_at TEXT
);
CREATE INDEX inbox_open ON inbox(id) WHERE state != 'done';

-- Changes already made, by the update that asked for them ('tg:<update_id>/<n>': its n-th
-- change), inserted in the change's own transaction: an update handled again changes nothing twice.
CREATE TABLE applied_updates (
    key TEXT PRIMARY KEY,
    at TEXT NOT NULL
) WITHOUT ROWID;

-- python-telegram-bot's persistence: conversations (a half-done /new, a pending question) and
-- each person's and chat's data, so that a restart continues where they were.
CREATE TABLE conversations (
    name TEXT NOT NULL,
    key TEXT NOT NULL,                 -- JSON of the conversation's key (chat id, user id)
    state TEXT NOT NULL,               -- JSON of its state
    PRIMARY KEY (name, key)
) WITHOUT ROWID;
CREATE TABLE conversation_data (
    kind TEXT NOT NULL CHECK (kind IN ('user', 'chat')),
    id INTEGER NOT NULL,
    data BLOB NOT NULL,                -- pickled by python-telegram-bot's rules for persistence
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
