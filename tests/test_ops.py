"""Running it: ``casebot health``, a database the process cannot write, a missing config, the
warnings of ``check-config``, the Docker image's promises, and a newcomer learning their id."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot import cli
from bot.config import (
    DEFAULT_CONFIG_ENV,
    EXAMPLE_IDS,
    TOKEN_ENV,
    config_warnings,
    load_settings,
    parse_settings,
)
from bot.db import Database, DatabaseOpenError, open_problem
from bot.handlers.basics import access_hint
from bot.health import Heartbeat, check, heartbeat_path, stale_after
from bot.i18n import use_locale
from tests import pgtest
from tests.conftest import Clock, config_dict
from tests.harness import running_bot

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "config" / "casebot.example.toml"
NOBODY = 65534


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEFAULT_CONFIG_ENV, raising=False)
    monkeypatch.delenv(TOKEN_ENV, raising=False)


def write_config(path: Path, database: Path, extra: str = "") -> Path:
    """A small valid config whose database is ``database``."""
    path.write_text(f"""{extra}
[database]
{pgtest.toml_database(database) if pgtest.enabled() else f"path = {json.dumps(str(database))}"}

[[categories]]
key = "land"
name = "Land"
name_km = "ដីធ្លី"

[[units]]
key = "moi"
name = "Ministry"
name_km = "ក្រសួង"
kind = "ministry"
""", encoding="utf-8")
    return path


def one_line(capsys: pytest.CaptureFixture[str], prefix: str) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


async def make_database(path: Path) -> None:
    db = await Database.open(path)
    await db.close()


# --- casebot health ------------------------------------------------------------------------------


def real_clock() -> datetime:
    return datetime.now(UTC)


async def test_health_is_ok_while_the_bot_runs(tmp_path: Path) -> None:
    """The bot on the real clock; ``casebot health`` in another process, as Docker runs it."""
    async with running_bot(tmp_path, real_clock) as bot:  # type: ignore[arg-type]
        config = write_config(tmp_path / "casebot.toml", bot.settings.database_path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "health", "--config", str(config), cwd=REPO_ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if k != DEFAULT_CONFIG_ENV})
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
        assert (proc.returncode, err.decode()) == (0, "")
        assert out.decode() == f"healthy: database {bot.settings.database}, outbox sender alive\n"


async def test_the_senders_own_loop_keeps_the_heartbeat(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        beat = heartbeat_path(bot.settings.database_path)
        assert beat is not None and beat.exists()
        beat.unlink()
        clock.advance(seconds=10)
        bot.services.sender.wake()  # its loop turns (no drain from the test here)
        for _ in range(1000):
            if beat.exists():
                break
            await asyncio.sleep(0.01)
        assert datetime.fromisoformat(beat.read_text().strip()) == clock()
        assert check(bot.settings, clock()) is None


async def test_a_stale_heartbeat_is_unhealthy(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        settings = bot.settings
        assert check(settings, clock()) is None
        clock.advance(seconds=61)  # the sender's loop has not turned since (nothing awaited)
        assert check(settings, clock()) == (
            "outbox sender: last heartbeat 61 s ago (limit 60 s): the sender is stuck or the bot is "
            "not running")
        await bot.settle()  # the sender's next turn beats again
        assert check(settings, clock()) is None
    clock.advance(seconds=59)
    assert check(settings, clock()) is None
    clock.advance(seconds=2)  # stopped: nobody beats any more
    assert "last heartbeat 61 s ago" in (check(settings, clock()) or "")
    assert check(settings, clock(), max_age=120) is None


def test_the_limit_grows_with_a_long_outbox_interval(tmp_path: Path) -> None:
    data = config_dict(tmp_path / "db.sqlite3")
    assert stale_after(parse_settings(data)) == 60
    data["outbox"] = {"interval_seconds": 60}
    assert stale_after(parse_settings(data)) == 185


def test_heartbeat_writes_at_most_every_few_seconds_and_never_raises(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "db.sqlite3.heartbeat"
    heart = Heartbeat(path, clock)
    heart.beat()
    first = clock()
    clock.advance(seconds=4)
    heart.beat()
    assert datetime.fromisoformat(path.read_text().strip()) == first
    clock.advance(seconds=1)
    heart.beat()
    assert datetime.fromisoformat(path.read_text().strip()) == clock()
    broken = Heartbeat(tmp_path / "no-such-folder" / "x.heartbeat", clock)
    broken.beat()
    broken.beat()
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        f"heartbeat {tmp_path / 'no-such-folder' / 'x.heartbeat'} not written"]


async def test_health_cli_fresh_and_stale_heartbeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data" / "casebot.sqlite3"
    await make_database(db)
    config = write_config(tmp_path / "casebot.toml", db)
    beat = heartbeat_path(db)
    db.parent.mkdir(parents=True, exist_ok=True)  # on PostgreSQL no file made it
    Heartbeat(beat, lambda: datetime.now(UTC) - timedelta(seconds=120)).beat()
    assert cli.main(["health", "--config", str(config)]) == 1
    line = one_line(capsys, "unhealthy: outbox sender: last heartbeat ")
    assert re.fullmatch(r"unhealthy: outbox sender: last heartbeat 12\d s ago \(limit 60 s\): "
                        r"the sender is stuck or the bot is not running", line), line
    assert cli.main(["health", "--config", str(config), "--max-age", "600"]) == 0
    assert capsys.readouterr() == (f"healthy: database {pgtest.target(db)}, outbox sender alive\n", "")
    Heartbeat(beat, real_clock).beat()
    assert cli.main(["health", "--config", str(config)]) == 0
    capsys.readouterr()


async def test_health_cli_without_a_heartbeat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "casebot.sqlite3"
    await make_database(db)
    config = write_config(tmp_path / "casebot.toml", db)
    assert cli.main(["health", "--config", str(config)]) == 1
    assert one_line(capsys, "unhealthy: ") == (
        f"unhealthy: outbox sender: no heartbeat at {db}.heartbeat (is `casebot run` running?)")
    Path(f"{db}.heartbeat").write_text("yesterday\n")
    assert cli.main(["health", "--config", str(config)]) == 1
    assert "holds 'yesterday', not a time" in one_line(capsys, "unhealthy: outbox sender: ")


@pytest.mark.sqlite_only("a missing database file")
def test_health_cli_missing_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "data" / "casebot.sqlite3"
    config = write_config(tmp_path / "casebot.toml", db)
    Heartbeat(heartbeat_path(tmp_path / "casebot.sqlite3"), real_clock).beat()
    assert cli.main(["health", "--config", str(config)]) == 1
    assert one_line(capsys, "unhealthy: ") == (
        f"unhealthy: database {db} does not exist (the bot creates it when it starts)")
    assert not db.exists() and not db.parent.exists()  # the check creates nothing


@pytest.mark.sqlite_only("a damaged file and PRAGMA quick_check")
async def test_health_cli_corrupt_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "casebot.sqlite3"
    config = write_config(tmp_path / "casebot.toml", db)
    Heartbeat(heartbeat_path(db), real_clock).beat()  # a fresh heartbeat: only the database is wrong

    db.write_bytes(b"not a database " * 1000)
    assert cli.main(["health", "--config", str(config)]) == 1
    assert one_line(capsys, "unhealthy: ") == f"unhealthy: database {db} is damaged: file is not a database"

    # A real database with pages overwritten in the middle: PRAGMA quick_check finds it.
    db.unlink()
    database = await Database.open(db)
    await database.write("CREATE TABLE filler(x TEXT)")
    await database.write("INSERT INTO filler VALUES (?)", [("x" * 500,) for _ in range(2000)], many=True)
    await database.close()
    assert cli.main(["health", "--config", str(config)]) == 0
    capsys.readouterr()
    data = bytearray(db.read_bytes())
    data[4096 * 40:4096 * 43] = b"\x55" * (4096 * 3)
    db.write_bytes(bytes(data))
    assert cli.main(["health", "--config", str(config)]) == 1
    assert one_line(capsys, "unhealthy: ").startswith(f"unhealthy: database {db} is damaged: ")

    db.write_bytes(b"")  # an empty file is a valid, empty SQLite database: not casebot's
    assert cli.main(["health", "--config", str(config)]) == 1
    assert one_line(capsys, "unhealthy: ") == (
        f"unhealthy: database {db} holds no casebot tables (schema version 0)")


def test_health_cli_bad_config_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Docker's HEALTHCHECK knows only 0 and 1 (2 is reserved)."""
    assert cli.main(["health", "--config", str(tmp_path / "none.toml")]) == 1
    assert "does not exist" in one_line(capsys, "unhealthy: config error: config: ")


# --- the database this process cannot write ------------------------------------------------------


@contextmanager
def effective_uid(uid: int) -> Iterator[None]:
    """Run as another user (root only: the real uid stays 0, so the effective one comes back)."""
    os.seteuid(uid)
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder everyone may walk into (pytest's tmp_path lies under a folder only its owner may)."""
    folder = Path(tempfile.mkdtemp(prefix="casebot-ops-"))
    folder.chmod(0o755)
    yield folder
    for sub in folder.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(folder)


@pytest.mark.sqlite_only("the database file's folder")
async def test_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("I am a file")
    db = tmp_path / "data" / "casebot.sqlite3"
    expected = f"cannot write to {db}: {tmp_path / 'data'} is a file, not a folder; set database.path elsewhere"
    assert open_problem(db) == expected
    with pytest.raises(DatabaseOpenError) as caught:
        await Database.open(db)
    assert str(caught.value) == expected
    deeper = tmp_path / "data" / "more" / "casebot.sqlite3"
    assert open_problem(deeper) == (
        f"cannot write to {deeper}: {tmp_path / 'data'} is a file, not a folder; set database.path elsewhere")


@pytest.mark.sqlite_only("the database file's folder and permissions")
def test_run_and_offline_commands_say_it_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").write_text("I am a file")
    db = tmp_path / "data" / "casebot.sqlite3"
    config = write_config(tmp_path / "casebot.toml", db)
    monkeypatch.setenv(TOKEN_ENV, "123:SECRET")

    def must_not_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bot must not start on a database it cannot write")

    import bot.app

    monkeypatch.setattr(bot.app, "build_application", must_not_build)
    assert cli.main(["run", "--config", str(config)]) == 2
    line = one_line(capsys, "database error: ")
    assert line == f"database error: cannot write to {db}: {tmp_path / 'data'} is a file, not a folder; " \
                   "set database.path elsewhere"
    assert cli.main(["stats", "--config", str(config)]) == 2
    assert one_line(capsys, "database error: ") == line


@pytest.mark.sqlite_only("file permissions")
def test_folder_owned_by_another_user(open_folder: Path) -> None:
    if os.geteuid() == 0:  # root ignores permissions: look at it as another user
        data = open_folder / "data"
        data.mkdir(mode=0o755)
        db = data / "casebot.sqlite3"
        with effective_uid(NOBODY):
            problem = open_problem(db)
        owner, me = 0, NOBODY
    else:  # a folder of root's that nobody else may write
        if os.access("/", os.W_OK):
            pytest.skip("/ is writable here")
        db = Path("/casebot-ops-test-no-such-folder/casebot.sqlite3")
        data, owner, me = Path("/"), 0, os.geteuid()
        problem = open_problem(db)
    assert problem == (
        f"cannot write to {db}: {data} is owned by uid {owner} (mode drwxr-xr-x) and casebot runs as "
        f"uid {me}; chown it to {me} (chown -R {me}:{os.getegid()} on the host's folder) or set "
        "database.path elsewhere")


@pytest.mark.sqlite_only("file permissions")
def test_own_folder_not_writable(open_folder: Path) -> None:
    data = open_folder / "data"
    data.mkdir()
    db = data / "casebot.sqlite3"
    data.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permissions: make it another user's and look as them
        os.chown(data, NOBODY, NOBODY)
        with effective_uid(NOBODY):
            problem = open_problem(db)
    else:
        problem = open_problem(db)
    assert problem == (f"cannot write to {db}: {data} is not writable (mode dr-xr-xr-x); chmod u+wx it "
                       "or set database.path elsewhere")


@pytest.mark.sqlite_only("file permissions")
async def test_database_file_of_another_user(open_folder: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a file another user's needs root")
    db = open_folder / "casebot.sqlite3"
    await make_database(db)
    db.chmod(0o644)
    open_folder.chmod(0o777)  # the folder is writable for everyone; the file is root's
    with effective_uid(NOBODY):
        problem = open_problem(db)
    assert problem is not None
    assert problem.startswith(f"cannot write to {db}: {db} is owned by uid 0 (mode -rw-r--r--) and casebot "
                              f"runs as uid {NOBODY}; chown it to {NOBODY}")


def test_a_writable_place_is_fine(tmp_path: Path) -> None:
    db = tmp_path / "new" / "folder" / "casebot.sqlite3"
    assert open_problem(db) is None
    assert db.parent.is_dir()


# --- a missing config ----------------------------------------------------------------------------


def test_missing_config_in_the_container_says_where_to_mount_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    where = tmp_path / "config" / "casebot.toml"  # as /config/casebot.toml in the image
    monkeypatch.setenv(DEFAULT_CONFIG_ENV, str(where))
    monkeypatch.setenv(TOKEN_ENV, "123:SECRET")
    assert cli.main(["run"]) == 2
    assert one_line(capsys, "config error: ") == (
        f"config error: config: file '{where}' does not exist: write it (start from "
        f"config/casebot.example.toml) or give another with --config PATH or {DEFAULT_CONFIG_ENV}; "
        f"in a container, mount yours there: -v /srv/casebot/casebot.toml:{where}:ro")


def test_missing_relative_config_has_no_mount_hint(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", "--config", "no-such-casebot.toml"]) == 2
    line = one_line(capsys, "config error: ")
    assert "'no-such-casebot.toml' does not exist: write it" in line and "-v " not in line


# --- check-config warnings -----------------------------------------------------------------------


def test_example_ids_are_those_of_the_example() -> None:
    example = load_settings(EXAMPLE)
    assert set(example.admins) | set(example.working_group) == EXAMPLE_IDS


def test_warnings_for_example_ids_and_holidays_by_year(tmp_path: Path) -> None:
    example = load_settings(EXAMPLE)  # admins [100000001], working group [100000001, 100000002]
    ids = [
        "admins: 100000001 is an id from the example config; put your own Telegram ids there",
        "working_group: 100000001 is an id from the example config; put your own Telegram ids there",
        "working_group: 100000002 is an id from the example config; put your own Telegram ids there",
    ]
    holidays = "deadlines.holidays: no date in {}; deadlines falling then will count holidays as working days"
    # The example uses Cambodia's calendar, which knows every year.
    assert config_warnings(example, date(2026, 6, 1)) == ids
    assert config_warnings(example, date(2028, 1, 1)) == ids

    data = config_dict(tmp_path / "db.sqlite3")  # admins and working group of our own
    data["deadlines"] = {"working_days": ["mon", "tue", "wed", "thu", "fri"], "holiday_country": "",
                         "holidays": ["2026-04-14", "2027-01-01"]}  # no calendar: only the list
    assert config_warnings(parse_settings(data), date(2026, 6, 1)) == []
    assert config_warnings(parse_settings(data), date(2027, 6, 1)) == [holidays.format(2028)]
    del data["deadlines"]["working_days"]  # every day counts: holidays do not matter
    assert config_warnings(parse_settings(data), date(2027, 6, 1)) == []


def test_check_config_prints_the_warnings_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("admins = [100000001]", "admins = [777000111]")
    text = text.replace("working_group = [100000001, 100000002]", "working_group = [777000111, 100000002]")
    config = tmp_path / "casebot.toml"
    config.write_text(text, encoding="utf-8")
    assert cli.main(["check-config", "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("OK: 9 units")
    assert err.splitlines() == [
        "warning: working_group: 100000002 is an id from the example config; put your own Telegram ids there",
    ]


# --- the Docker image ----------------------------------------------------------------------------


def test_dockerfile_and_readme_agree() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    env = re.search(r"CASEBOT_CONFIG=(\S+)", dockerfile)
    volume = re.search(r'^VOLUME \["([^"]+)"\]', dockerfile, re.MULTILINE)
    assert env is not None and volume is not None
    assert (env.group(1), volume.group(1)) == ("/config/casebot.toml", "/data")
    # No config in the image: the example's admin id must never become a real admin.
    assert "config/" not in "".join(line for line in dockerfile.splitlines() if line.startswith("COPY"))
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", dockerfile, re.MULTILINE)
    assert "--require-hashes -r requirements.lock" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)
    assert re.search(r'^HEALTHCHECK .*CMD \["casebot", "health"\]$', dockerfile, re.MULTILINE)
    run = re.search(r"^docker run .*?(?<!\\)\n", readme, re.MULTILINE | re.DOTALL)
    assert run is not None
    line = run.group(0)
    assert "--restart unless-stopped" in line and "-e BOT_TOKEN" in line
    assert f":{env.group(1)}:ro" in line and re.search(rf"-v \S+:{volume.group(1)}\s", line)


# --- a newcomer learns their Telegram id ---------------------------------------------------------


async def test_a_khmer_newcomer_learns_their_id(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock) as bot:
        newcomer = bot.api.user(3999, "Sok", language_code="km")
        m = await bot.say(newcomer, bot.private(newcomer), "/start")  # the citizen's welcome, with the id
        assert bot.texts_since(m)[0].endswith(
            "បុគ្គលិក៖ សូមស្នើសុំការអញ្ជើញពីអ្នកគ្រប់គ្រងរបស់លោកអ្នក។ លេខសម្គាល់ Telegram របស់លោកអ្នកគឺ "
            "<code>3999</code>។")
        m = await bot.say(newcomer, bot.private(newcomer), "/new")  # a staff command: the hint
        assert bot.texts_since(m) == [
            "ខ្ញុំមិនទាន់ស្គាល់លោកអ្នកនៅឡើយទេ។ លេខសម្គាល់ Telegram របស់លោកអ្នកគឺ <code>3999</code>៖ "
            "អ្នកគ្រប់គ្រងអាចបន្ថែមលេខនេះទៅក្នុង <code>admins</code> នៃឯកសារកំណត់ (config) "
            "ឬផ្ញើតំណអញ្ជើញមកលោកអ្នក។"]  # the fake Bot API checks the HTML


@pytest.mark.parametrize("lang", ["en", "km"])
def test_the_alert_under_a_button_is_plain_and_fits(lang: str) -> None:
    with use_locale(lang):
        alert = access_hint(9_999_999_999, html=False)
    assert "9999999999" in alert and "<" not in alert
    assert len(alert) <= 200  # Telegram's limit for a callback query's answer
