-- PostgreSQL's twin of bot/migrations/0007_outbox_order.sql (see bot/migrations_pg/__init__.py).
-- Each chat gets its messages in order: finding an earlier pending row to the same chat is an
-- index probe, not a scan of the pending rows.
CREATE INDEX outbox_pending_chat ON outbox(chat_id, id) WHERE sent_at IS NULL AND failed_at IS NULL;
