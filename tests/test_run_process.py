"""`casebot run` for real: a separate process, long polling the fake Bot API, stopped by SIGINT."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests import pgtest
from tests.fakebotapi import FakeBotAPI

CONFIG = """
timezone = "Asia/Phnom_Penh"
admins = [1001]
working_group = [1002]
[telegram]
base_url = "{base_url}"
base_file_url = "{base_file_url}"
[database]
{db}
[[categories]]
key = "land"
name = "Land dispute"
[[units]]
key = "moi"
name = "Ministry of Interior"
kind = "ministry"
"""


async def test_run_polls_answers_and_stops_cleanly(tmp_path: Path) -> None:
    with FakeBotAPI() as api:
        db = tmp_path / "new-folder" / "casebot.sqlite3"
        config = tmp_path / "casebot.toml"
        config.write_text(CONFIG.format(base_url=api.base_url, base_file_url=api.base_file_url,
                                        db=pgtest.toml_database(db)))
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        env.update(BOT_TOKEN=api.token, CASEBOT_CONFIG=str(config))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await api.wait_for("getUpdates", timeout=30)
            wg = api.user(1002, "Sophea")
            api.send_message(wg, api.private_chat(wg), "/help")
            # The answer to /help (after 07:30 local the day's digest may come first).
            call = await api.wait_for("sendMessage", lambda c: "What you can do" in str(
                c.params.get("text", "")), timeout=30)
            assert "/new" in call.params["text"]
            commands = api.calls_of("setMyCommands")
            assert commands and any("mycases" in str(c.params) for c in commands)
        finally:
            proc.send_signal(signal.SIGINT)
            _out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        assert proc.returncode == 0, err.decode()[-2000:]
        if not pgtest.enabled():  # the file and its folder were made (PostgreSQL: no file)
            assert db.exists()
        logs = err.decode()
        assert "casebot started" in logs
        assert api.token not in logs and api.token.split(":")[1] not in logs
