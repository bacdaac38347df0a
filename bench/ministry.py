"""The synthetic ministry every benchmark runs against: its config (units, categories, deadlines)
and the people ids. Units and categories reach the database through the real
``UnitService.sync_from_config``; the config's admins and working group through
``PeopleService.sync_config``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.config import Settings, parse_settings

# Monday 2 Nov 2026, 09:00 in Phnom Penh: a working day, outside quiet hours, past the digest time.
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
TIMEZONE = "Asia/Phnom_Penh"

ADMIN = 10_000
WORKING_GROUP = tuple(range(10_001, 10_009))  # eight dispatchers
WG_CHAT = -1_009_000_000_000
FIRST_OFFICIAL = 200_000
FIRST_SUPERVISOR = 300_000
FIRST_LIAISON = 400_000

PROVINCES = (
    "Phnom Penh", "Banteay Meanchey", "Battambang", "Kampong Cham", "Kampong Chhnang",
    "Kampong Speu", "Kampong Thom", "Kampot", "Kandal", "Kep", "Koh Kong", "Kratie",
    "Mondulkiri", "Oddar Meanchey", "Pailin", "Preah Sihanouk", "Preah Vihear", "Prey Veng",
    "Pursat", "Ratanakiri", "Siem Reap", "Stung Treng", "Svay Rieng", "Takeo", "Tbong Khmum",
)
DISTRICTS_PER_PROVINCE = 8  # 25 × 8 = 200 districts
DEPARTMENTS = ("Inspection", "Local Administration", "Legal Affairs", "Public Relations")
INSTITUTIONS = (
    "Ministry of Land Management", "Ministry of Health", "Ministry of Education",
    "Ministry of Public Works", "Ministry of Environment", "Ministry of Social Affairs",
    "Ministry of Agriculture", "Ministry of Water Resources", "Ministry of Labour",
    "Ministry of Justice", "Ministry of Commerce", "Ministry of Mines and Energy",
    "Ministry of Rural Development", "Ministry of Posts", "Ministry of Tourism",
    "Ministry of Culture", "Ministry of Women's Affairs", "Ministry of Economy",
    "National Police", "Anti-Corruption Unit", "Electricité du Cambodge",
    "Phnom Penh Water Supply", "National Social Security Fund", "General Department of Taxation",
    "General Department of Customs", "Cadastral Commission", "National Election Committee",
    "Ombudsman Office", "Human Rights Committee", "Council for the Development of Cambodia",
)
INSTITUTIONS_WITH_CHAT = 20  # the others are written to by letter, phone, email or in person
CATEGORIES = (
    ("land", "Land dispute", 20, None),
    ("documents", "Civil documents", 10, 2),
    ("public-services", "Public services", None, None),
    ("security", "Public order and security", 10, 1),
    ("health", "Health services", None, 2),
    ("education", "Education", None, None),
    ("utilities", "Water and electricity", None, None),
    ("roads", "Roads and transport", 30, None),
    ("environment", "Environment", None, None),
    ("social", "Social welfare", None, None),
    ("conduct", "Conduct of officials", 20, None),
    ("other", "Other", None, None),
)
HOLIDAYS = (
    "2025-01-01", "2025-01-07", "2025-04-14", "2025-04-15", "2025-04-16", "2025-05-01",
    "2025-05-14", "2025-09-24", "2025-10-15", "2025-10-29", "2025-11-09",
    "2026-01-01", "2026-01-07", "2026-04-14", "2026-04-15", "2026-04-16", "2026-05-01",
    "2026-05-14", "2026-09-24", "2026-10-15", "2026-10-29", "2026-11-09",
)
# Telegram's limits (the README's defaults); tests raise them to go fast.
REAL_DELIVERY = {"overall_per_second": 30, "per_chat_per_second": 1, "group_per_minute": 20}
FAST_DELIVERY = {"overall_per_second": 10_000, "per_chat_per_second": 10_000,
                 "group_per_minute": 100_000}


def province_key(p: int) -> str:
    return f"p{p:02d}"


def district_key(p: int, d: int) -> str:
    return f"p{p:02d}-d{d}"


def unit_chat(index: int) -> int:
    """A supergroup id for the index-th unit that has a chat."""
    return -1_001_000_000_000 - index


def config_dict(db_path: Path | str, *, base_url: str | None = None,
                delivery: Mapping[str, float] | None = None) -> dict[str, Any]:
    units: list[dict[str, Any]] = [{"key": "moi", "name": "Ministry of Interior", "kind": "ministry"}]
    chats = 0

    def chat() -> int:
        nonlocal chats
        chats += 1
        return unit_chat(chats)

    for i, name in enumerate(DEPARTMENTS):
        units.append({"key": f"dep{i}", "name": f"Department of {name}", "kind": "department",
                      "parent": "moi", "chat_id": chat()})
    for p, name in enumerate(PROVINCES):
        units.append({"key": province_key(p), "name": name, "kind": "province", "parent": "moi",
                      "chat_id": chat()})
        for d in range(DISTRICTS_PER_PROVINCE):
            units.append({"key": district_key(p, d), "name": f"{name} district {d + 1}",
                          "kind": "district", "parent": province_key(p), "chat_id": chat()})
    for i, name in enumerate(INSTITUTIONS):
        unit: dict[str, Any] = {"key": f"inst{i:02d}", "name": name, "kind": "external"}
        if i < INSTITUTIONS_WITH_CHAT:
            unit["chat_id"] = chat()
        if i % 3 == 0:
            unit["ack_days"] = 5
        units.append(unit)
    categories = []
    for key, name, resolve, urgent in CATEGORIES:
        cat: dict[str, Any] = {"key": key, "name": name}
        if resolve:
            cat["resolve_days"] = resolve
        if urgent:
            cat["urgent_resolve_days"] = urgent
        categories.append(cat)
    data: dict[str, Any] = {
        "timezone": TIMEZONE,
        "admins": [ADMIN],
        "working_group": list(WORKING_GROUP),
        "working_group_chat_id": WG_CHAT,
        "database": _database(db_path),
        "deadlines": {"working_days": ["mon", "tue", "wed", "thu", "fri"],
                      "holidays": list(HOLIDAYS)},
        "delivery": dict(delivery or REAL_DELIVERY),
        "categories": categories,
        "units": units,
    }
    if base_url is not None:
        data["telegram"] = {"base_url": base_url + "/bot", "base_file_url": base_url + "/file/bot"}
    return data


def _database(target: Path | str) -> dict[str, str]:
    """The config's database table: the file, or a PostgreSQL URL (its ``path`` then only says
    where the sender's heartbeat goes: a folder of the system's temporary one)."""
    if isinstance(target, str) and target.startswith("postgresql://"):
        return {"url": target, "path": str(Path(tempfile.gettempdir()) / "casebot-bench" / "casebot.sqlite3")}
    return {"path": str(target)}


def settings_for(db_path: Path | str, *, api: Any = None, base_url: str | None = None,
                 delivery: Mapping[str, float] | None = None) -> Settings:
    """Settings of the synthetic ministry, talking to a FakeBotAPI (``api``, or its root URL)."""
    if api is not None:
        base_url = str(api.base_url).removesuffix("/bot")
    return parse_settings(config_dict(db_path, base_url=base_url, delivery=delivery))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def config_toml(db_path: Path | str, *, base_url: str | None = None,
                delivery: Mapping[str, float] | None = None) -> str:
    """``config_dict`` as a TOML file's text, for the ``casebot`` command line (``--config``)."""
    data = config_dict(db_path, base_url=base_url, delivery=delivery)

    def is_tables(v: Any) -> bool:
        return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)

    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, dict) and not is_tables(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]", *(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())]
        elif is_tables(v):
            for item in v:
                lines += ["", f"[[{k}]]", *(f"{kk} = {_toml_value(vv)}" for kk, vv in item.items())]
    return "\n".join(lines) + "\n"
