-- PostgreSQL's twin of bot/migrations/0004_deadlines_digests.sql (see bot/migrations_pg/__init__.py).
-- Deadlines, the reminder ladder, daily digests, and delivery state.

ALTER TABLE cases ADD COLUMN accept_due_at TEXT COLLATE "C";             -- an assignment not yet accepted
ALTER TABLE cases ADD COLUMN paused_at TEXT COLLATE "C";                 -- waiting for information: clock stopped
ALTER TABLE cases ADD COLUMN next_action_at TEXT COLLATE "C";            -- next reminder or escalation
ALTER TABLE cases ADD COLUMN reminder_level BIGINT NOT NULL DEFAULT 0;  -- 1 reminded, 2 and 3 escalated
ALTER TABLE cases ADD COLUMN snoozes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX cases_next_action ON cases(next_action_at) WHERE next_action_at IS NOT NULL;
CREATE INDEX cases_status_unit ON cases(status, unit_id);

-- Whether a person has a private chat with the bot (they pressed Start, or wrote to it).
ALTER TABLE people ADD COLUMN private_chat BIGINT NOT NULL DEFAULT 0;

-- One digest per recipient (a person or the working group's chat) per local day.
CREATE TABLE digest_log (
    chat_id     BIGINT NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,                           -- local date, YYYY-MM-DD
    queued_at   TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (chat_id, day)
);
CREATE TABLE digest_mute (
    tg_id       BIGINT PRIMARY KEY,
    since       TEXT COLLATE "C" NOT NULL
);

-- Delivery: a claimed row is "sending"; Telegram's message id is kept; unreachable chats.
ALTER TABLE outbox ADD COLUMN sending_at TEXT COLLATE "C";
ALTER TABLE outbox ADD COLUMN message_id BIGINT;
CREATE TABLE unreachable_chats (
    chat_id     BIGINT PRIMARY KEY,
    since       TEXT COLLATE "C" NOT NULL,
    reason      TEXT COLLATE "C" NOT NULL
);
