-- PostgreSQL's twin of bot/migrations/0009_outbox_lanes.sql (see bot/migrations_pg/__init__.py).
-- Card edits are outbox rows of their own, one per posted card (kind 'edit'; message_id: the card
-- edited), and a card's pending edits collapse into one: finding it is an index probe.
CREATE INDEX outbox_pending_edit ON outbox(chat_id, message_id)
    WHERE kind = 'edit' AND sent_at IS NULL AND failed_at IS NULL;
