-- PostgreSQL's twin of bot/migrations/0005_backlog.sql (see bot/migrations_pg/__init__.py).
-- The carried-over backlog: imported cases keep their original reference (the import key).

ALTER TABLE cases ADD COLUMN external_ref TEXT COLLATE "C";
CREATE UNIQUE INDEX cases_external_ref ON cases(external_ref) WHERE external_ref IS NOT NULL;
CREATE INDEX cases_received ON cases(received_at);
CREATE INDEX cases_closed ON cases(closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX cases_resolved ON cases(resolved_at) WHERE resolved_at IS NOT NULL;
