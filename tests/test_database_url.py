"""database.url selects PostgreSQL; its password never comes from the config, and never shows."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.config import ConfigError, parse_settings
from bot.db import Database, DatabaseOpenError
from bot.pg import redacted
from tests.conftest import config_dict


def with_database(tmp_path: Path, table: dict[str, str]) -> dict[str, object]:
    data = config_dict(tmp_path / "db.sqlite3")
    data["database"] = table
    return data


def test_a_url_selects_postgresql_and_a_path_keeps_sqlite(tmp_path: Path) -> None:
    url = "postgresql://casebot@db.example.org:5432/casebot"
    s = parse_settings(with_database(tmp_path, {"url": url}))
    assert s.database == url and s.database_url == url
    s = parse_settings(with_database(tmp_path, {"path": str(tmp_path / "x.sqlite3")}))
    assert s.database == tmp_path / "x.sqlite3" and s.database_url is None


@pytest.mark.parametrize(("url", "why"), [
    ("postgresql://casebot:secret@db:5432/casebot", "CASEBOT_DATABASE_PASSWORD"),
    ("mysql://casebot@db/casebot", "postgresql://"),
    ("postgresql://casebot@db:5432/", "postgresql://"),
    ("postgresql://casebot@db:port/casebot", "port"),
])
def test_a_bad_url_is_one_line_and_never_shows_a_password(tmp_path: Path, url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        parse_settings(with_database(tmp_path, {"url": url}))
    assert "secret" not in str(info.value)


async def test_an_unreachable_server_is_one_line_without_the_password(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CASEBOT_DATABASE_PASSWORD", "s3cret-pw")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DatabaseOpenError) as info:
        await Database.open("postgresql://casebot@127.0.0.1:9/casebot?connect_timeout=2")
    line = str(info.value)
    assert line.startswith("cannot open the database postgresql://casebot@127.0.0.1:9/casebot")
    assert "\n" not in line and "s3cret-pw" not in line and "s3cret-pw" not in caplog.text
    assert redacted("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
