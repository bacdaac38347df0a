-- Khmer and English: a person's chosen language, a group's language, names in both languages.

ALTER TABLE people ADD COLUMN lang TEXT;                     -- chosen with /lang; NULL: from Telegram
CREATE TABLE chat_languages (
    chat_id     INTEGER PRIMARY KEY,
    lang        TEXT NOT NULL
);
ALTER TABLE units ADD COLUMN name_km TEXT;
ALTER TABLE categories ADD COLUMN name_km TEXT;
