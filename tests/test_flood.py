"""The flood guard's allowance (a token bucket per person), its bound, and [flood] in the config.
End to end through the fake Bot API: tests/test_flood_e2e.py."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from bot.bounded import MAX_ENTRIES
from bot.config import ConfigError, FloodSettings, load_settings, parse_settings
from bot.handlers.flood import FloodGuard, Verdict, slow_down_text
from bot.i18n import use_locale
from tests.conftest import config_dict

PASS, WARN, IGNORE = Verdict.PASS, Verdict.WARN, Verdict.IGNORE
DEFAULTS = FloodSettings()
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "casebot.example.toml"


def guard(burst: int = 20, per_minute: float = 30, quiet: float = 60, maxsize: int = MAX_ENTRIES) -> FloodGuard:
    return FloodGuard(FloodSettings(burst, per_minute, quiet), maxsize)


# --- the allowance ---------------------------------------------------------------------------------

def test_a_burst_passes_then_one_warning_then_silence_until_the_quiet_period_ends() -> None:
    g = guard()
    t = 1000.0
    assert [g.check(1, t) for _ in range(20)] == [PASS] * 20
    assert g.check(1, t) is WARN
    assert [g.check(1, t + s) for s in (0, 1, 30, 59.9)] == [IGNORE] * 4
    # After the quiet period: the allowance came back meanwhile (30 a minute, up to the burst).
    assert [g.check(1, t + 60 + i * 0.01) for i in range(20)] == [PASS] * 20
    assert g.check(1, t + 60.5) is WARN  # and a new period, with its own single warning
    assert g.check(1, t + 61) is IGNORE


def test_the_allowance_comes_back_at_per_minute() -> None:
    g = guard(burst=5, per_minute=30)  # one every 2 seconds
    t = 0.0
    assert [g.check(7, t) for _ in range(5)] == [PASS] * 5
    t += 2.0
    assert g.check(7, t) is PASS  # exactly one came back
    assert g.check(7, t) is WARN


def test_a_steady_pace_under_the_rate_is_never_slowed() -> None:
    g = guard(burst=20, per_minute=30)
    assert all(g.check(1, i * 2.0) is PASS for i in range(2000))  # one every 2 s, for an hour+
    g2 = guard(burst=20, per_minute=30)
    # Ten quick ones (an album) every 20 seconds: 30 a minute on average.
    assert all(g2.check(1, block * 20.0 + i * 0.05) is PASS for block in range(200) for i in range(10))


def test_within_any_window_no_more_pass_than_the_burst_and_the_rate_allow() -> None:
    """The token bucket's promise, on random schedules: in any window of T seconds, at most
    burst + rate·T updates pass."""
    rng = random.Random(20261102)
    for _ in range(20):
        burst, per_minute = rng.randint(1, 30), rng.uniform(1, 120)
        quiet = rng.uniform(60 / per_minute, 120)  # long enough for one to come back
        g = guard(burst, per_minute, quiet)
        t, passed = 0.0, []
        for _ in range(400):
            t += rng.expovariate(rng.choice([0.2, 2.0, 20.0]))  # slow, quick and very quick spells
            if g.check(5, t) is PASS:
                passed.append(t)
        rate = per_minute / 60
        for i, start in enumerate(passed):
            for j in range(i, len(passed)):
                assert j - i + 1 <= burst + rate * (passed[j] - start) + 1e-9


def test_one_warning_per_quiet_period_whatever_the_pace() -> None:
    rng = random.Random(7)
    g = guard(burst=3, per_minute=6, quiet=10)
    t, warned_at = 0.0, []
    for _ in range(5000):
        t += rng.uniform(0, 0.5)
        if g.check(9, t) is WARN:
            warned_at.append(t)
    assert len(warned_at) > 10
    assert all(b - a >= 10 for a, b in itertools.pairwise(warned_at))


def test_after_a_short_quiet_period_the_person_is_answered_again() -> None:
    g = guard(burst=2, per_minute=1, quiet=5)  # less than one comes back in 5 s
    assert [g.check(1, 0) for _ in range(3)] == [PASS, PASS, WARN]
    assert g.check(1, 4.9) is IGNORE
    assert [g.check(1, 5.0), g.check(1, 5.0)] == [PASS, WARN]


def test_people_have_their_own_allowances() -> None:
    g = guard(burst=2)
    assert [g.check(1, 0) for _ in range(3)] == [PASS, PASS, WARN]
    assert [g.check(2, 0) for _ in range(2)] == [PASS, PASS]
    assert g.check(1, 1) is IGNORE and g.check(3, 1) is PASS


def test_a_clock_set_back_gives_no_allowance_back_and_does_not_lengthen_the_quiet() -> None:
    g = guard(burst=2, per_minute=60, quiet=60)
    assert [g.check(1, 100), g.check(1, 100)] == [PASS, PASS]
    assert g.check(1, 50) is WARN  # set back 50 s: no allowance came back for it
    assert g.check(1, 50) is IGNORE
    g.check(2, 100)
    g.check(2, 100)
    assert g.check(2, 100) is WARN
    assert g.check(2, 0) is PASS  # before the quiet period began: the period is over, not longer


def test_the_guard_remembers_at_most_maxsize_people() -> None:
    g = guard(burst=1, maxsize=100)
    for uid in range(5000):
        g.check(uid, uid * 0.001)
        assert len(g.buckets) <= 100
    # The most recent are kept, quiet ones included.
    assert g.check(4999, 5.0) is WARN and g.check(4999, 5.0) is IGNORE


def test_the_slow_down_text_in_both_languages() -> None:
    assert slow_down_text(60) == "Please slow down: I will read your messages again in a minute."
    assert slow_down_text(61) == "Please slow down: I will read your messages again in 2 minutes."
    assert slow_down_text(5) == "Please slow down: I will read your messages again in a minute."
    with use_locale("km"):
        assert slow_down_text(60) == "សូមផ្ញើសារយឺតៗបន្តិច៖ ខ្ញុំនឹងអានសាររបស់លោកអ្នកម្ដងទៀតក្រោយ 1 នាទី។"


# --- the config ---------------------------------------------------------------------------------------

def test_flood_settings_parse_and_default(tmp_path: Path) -> None:
    data = config_dict(tmp_path / "db.sqlite3")
    assert parse_settings(data).flood == DEFAULTS == FloodSettings(20, 30.0, 60.0)
    data["flood"] = {"burst": 5, "per_minute": 12.5, "quiet_seconds": 30}
    assert parse_settings(data).flood == FloodSettings(5, 12.5, 30.0)
    assert load_settings(EXAMPLE).flood == DEFAULTS  # the example says the defaults


@pytest.mark.parametrize(("flood", "message"), [
    ({"burst": 0}, "flood.burst: must be at least 1"),
    ({"burst": 2.5}, "flood.burst: must be a whole number"),
    ({"per_minute": -1}, "flood.per_minute: must be a finite number greater than 0"),
    ({"quiet_seconds": "60"}, "flood.quiet_seconds: must be a number"),
    ({"burts": 20}, "flood.burts: unknown key"),
    ("fast", "flood: must be a table"),
])
def test_bad_flood_settings_name_the_key(tmp_path: Path, flood: Any, message: str) -> None:
    data = config_dict(tmp_path / "db.sqlite3")
    data["flood"] = flood
    with pytest.raises(ConfigError, match=message):
        parse_settings(data)


def test_the_throttle_forgets_chats_out_of_every_window() -> None:
    from bot.config import DeliverySettings
    from bot.jobs.throttle import KEEP_CHATS, Throttle

    now = [0.0]
    throttle = Throttle(DeliverySettings(overall_per_second=1e9, per_chat_per_second=1e9,
                                         group_per_minute=1e9), clock=lambda: now[0])
    for chat in range(1, 3 * KEEP_CHATS):
        assert throttle.take(-chat) == 0.0
        throttle.done(-chat)
        now[0] += 0.1  # a chat a tenth of a second: after a minute, the first are out of every window
    assert len(throttle._last) <= KEEP_CHATS + 61 * 10 and len(throttle._groups) <= KEEP_CHATS + 61 * 10
    assert throttle.take(-1) == 0.0  # a forgotten chat may be written to again
