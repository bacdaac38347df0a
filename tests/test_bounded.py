"""Every in-memory map that grows with people, chats or offers keeps within a bound: the shared
LRU map, the services' caches, a person's checked import files. (The flood guard's allowances:
tests/test_flood.py; the per-chat locks of bot/ordering.py: tests/test_ordering.py.)"""

from __future__ import annotations

import random
from typing import Any

import pytest

from bot.bounded import MAX_ENTRIES, LRUDict
from bot.domain.rules import Role
from tests.conftest import OFFICIAL, STRANGER, WG, Domain
from tests.harness import Bot
from tests.test_import_e2e import send_file
from tests.test_importer import csv_file, row

# --- the bounded map --------------------------------------------------------------------------------

def test_lru_dict_never_exceeds_its_bound_and_forgets_the_least_recent() -> None:
    d: LRUDict[int, str] = LRUDict(3)
    d[1], d[2], d[3] = "a", "b", "c"
    assert d[1] == "a"  # 1 is now the most recent
    d[4] = "d"
    assert list(d) == [3, 1, 4] and 2 not in d
    assert 3 in d  # a membership test is not a use
    d[5] = "e"
    assert list(d) == [1, 4, 5]
    assert d.get(4) == "d" and d.setdefault(6, "f") == "f"
    assert list(d) == [5, 4, 6]
    assert d.pop(5) == "e" and len(d) == 2
    d.clear()
    assert len(d) == 0
    with pytest.raises(ValueError):
        LRUDict(0)


def test_lru_dict_random_operations_stay_within_the_bound_and_agree_with_a_model() -> None:
    rng = random.Random(42)
    for size in (1, 2, 5, 50):
        d: LRUDict[int, int] = LRUDict(size)
        model: list[tuple[int, int]] = []  # least recent first
        for _ in range(3000):
            key = rng.randrange(80)
            op = rng.random()
            if op < 0.5:
                d[key] = op_value = rng.randrange(1000)
                model = [kv for kv in model if kv[0] != key] + [(key, op_value)]
                model = model[-size:]
            elif op < 0.8:
                found = dict(model).get(key)
                assert d.get(key) == found
                if found is not None:
                    model = [kv for kv in model if kv[0] != key] + [(key, found)]
            elif key in dict(model):
                del d[key]
                model = [kv for kv in model if kv[0] != key]
            assert len(d) <= size
            assert list(d.items()) == model


# --- the bounded caches of the services ----------------------------------------------------------------

async def test_the_language_and_grant_caches_stay_bounded_and_right(domain: Domain, clock: Any) -> None:
    units, people = domain.units, domain.people
    assert isinstance(units._languages, LRUDict) and units._languages.maxsize == MAX_ENTRIES
    assert isinstance(units._seen, LRUDict) and isinstance(people._grants, LRUDict)
    units._languages.maxsize = people._grants.maxsize = units._seen.maxsize = 10
    await units.set_language(-100555, "km")
    for chat in range(-100600, -100500):  # many groups, and many strangers
        await units.language_of(chat)
        assert len(units._languages) <= 10
    for tg_id in range(900000, 900100):
        assert not await people.is_registered(tg_id)
        assert len(people._grants) <= 10
    for i in range(30):
        await units.seen(OFFICIAL, f"Dara {i}", "dara", "en", clock(), private=True)
        await units.seen(STRANGER + i, "Someone", None, "en", clock())
        assert len(units._seen) <= 10
    # Forgotten entries are read again, the same.
    assert await units.language_of(-100555) == "km"
    assert await people.is_registered(OFFICIAL)


# --- offers waiting for a press ----------------------------------------------------------------------

async def test_checked_files_waiting_for_import_are_bounded_per_person(bot: Bot) -> None:
    wg, chat = bot.wg, bot.private(bot.wg)
    assert Role.WORKING_GROUP in await bot.services.people.global_roles(WG)
    offers = []
    for i in range(4):
        await send_file(bot, wg, chat, f"backlog{i}.csv", csv_file(row(external_ref=f"R-{i}")))
        offers.append(bot.last_bot_message(wg["id"]))
    m = await bot.press_button(wg, offers[0], "Import")  # pushed out by three newer files
    assert bot.answers_since(m) == ["This import has expired: send the file again."]
    m = await bot.press_button(wg, offers[1], "Import")
    assert bot.texts_since(m)[0].startswith("Imported 1 case from backlog1.csv.")
