-- PostgreSQL's twin of bot/migrations/0012_replies.sql (see bot/migrations_pg/__init__.py).
-- A reply to one of the bot's messages is about the case that message is about (a note, an answer):
-- finding the sent rows of a message is an index probe.
CREATE INDEX outbox_message ON outbox(chat_id, message_id) WHERE message_id IS NOT NULL;
