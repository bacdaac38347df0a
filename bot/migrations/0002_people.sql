-- People and permissions: roles granted by invitation, invitations stored as hashes,
-- and a log of refused attempts. Membership "seen in a unit's chat" is gone.

DROP TABLE unit_members;

-- Active rights have revoked_at NULL. unit_id is NULL for admin and working_group.
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY,
    tg_id       INTEGER NOT NULL,
    role        TEXT NOT NULL,
    unit_id     INTEGER REFERENCES units(id),
    source      TEXT NOT NULL,            -- config | invitation
    granted_by  INTEGER,
    granted_at  TEXT NOT NULL,
    revoked_by  INTEGER,
    revoked_at  TEXT
);
CREATE INDEX grants_person ON grants(tg_id) WHERE revoked_at IS NULL;
CREATE INDEX grants_unit ON grants(unit_id, role) WHERE revoked_at IS NULL;
CREATE UNIQUE INDEX grants_one_active ON grants(tg_id, role, IFNULL(unit_id, 0)) WHERE revoked_at IS NULL;

-- Single-use invitation links. Only the SHA-256 of the token is kept.
CREATE TABLE invitations (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    unit_id     INTEGER REFERENCES units(id),
    created_by  INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_by     INTEGER,
    used_at     TEXT,
    revoked_by  INTEGER,
    revoked_at  TEXT
);

-- Who tried what and was refused, for admins to review.
CREATE TABLE refusals (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    tg_id       INTEGER NOT NULL,
    action      TEXT NOT NULL,
    case_id     INTEGER,
    chat_id     INTEGER
);
CREATE INDEX refusals_at ON refusals(at);
