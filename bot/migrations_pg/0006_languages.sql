-- PostgreSQL's twin of bot/migrations/0006_languages.sql (see bot/migrations_pg/__init__.py).
-- Khmer and English: a person's chosen language, a group's language, names in both languages.

ALTER TABLE people ADD COLUMN lang TEXT COLLATE "C";                     -- chosen with /lang; NULL: from Telegram
CREATE TABLE chat_languages (
    chat_id     BIGINT PRIMARY KEY,
    lang        TEXT COLLATE "C" NOT NULL
);
ALTER TABLE units ADD COLUMN name_km TEXT COLLATE "C";
ALTER TABLE categories ADD COLUMN name_km TEXT COLLATE "C";
