-- PostgreSQL's twin of bot/migrations/0014_leases.sql (see bot/migrations_pg/__init__.py).
-- Two instances on one database (bot/lease.py): what only one of them may do at a time is
-- held by a lease, renewed by its holder and taken over by the other once it expires.
CREATE TABLE leases (
    name TEXT COLLATE "C" PRIMARY KEY,             -- 'jobs', 'poller', 'instance:<id>'
    holder TEXT COLLATE "C" NOT NULL,              -- the instance: 'host:pid:random'
    expires_at TEXT COLLATE "C" NOT NULL,          -- UTC, to the millisecond (bot.lease.stamp)
    renewed_at TEXT COLLATE "C" NOT NULL
);

-- An inbox row is handled by the instance that claimed it, while its claim lasts; a chat's rows
-- are claimed in order, never one whose chat has an earlier row claimed by another instance.
ALTER TABLE inbox ADD COLUMN claimed_by TEXT COLLATE "C";
ALTER TABLE inbox ADD COLUMN claimed_until TEXT COLLATE "C";
CREATE INDEX inbox_chat_pending ON inbox(chat_key, id) WHERE state = 'pending';

-- The instance whose sender has an outbox row in hand (with sending_at): a row is taken back
-- only once its sender's lease has expired.
ALTER TABLE outbox ADD COLUMN sending_by TEXT COLLATE "C";
