"""Exports without personal data (issue 15, leak 2): citizens write their name and phone number
into their requests, officials into their notes. Without personal data, the export scrubs the
case's own names and contacts and every phone number out of the summary, the description and the
events' notes (CSV and XLSX, by the CLI and by /export); the public figures and reports carry no
case text at all."""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.domain.cases import SYSTEM, Actor, Change, ImportedCase
from bot.domain.reports import ReportService, parse_period
from bot.domain.rules import Action, Status
from bot.domain.scrub import REMOVED, name_parts
from bot.inputs import KHMER_DIGITS
from bot.reporting import cli_export, cli_stats, fairness_lines, render_report, stats_markdown
from tests.conftest import WG, WG_CHAT, Clock, Domain
from tests.harness import Bot
from tests.test_e2e_inputs import make_case

TO_KHMER = str.maketrans("0123456789", KHMER_DIGITS)
TO_ASCII = str.maketrans(KHMER_DIGITS, "0123456789")
WG_ACTOR = Actor(WG, "Wg Member", WG_CHAT)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text.translate(TO_ASCII))


async def export(domain: Domain, path: Path, fmt: str, *, personal: bool) -> dict[str, list[dict[str, str]]]:
    """The sheets of a CLI export, as rows of text by column."""
    assert await cli_export(domain.settings, argparse.Namespace(
        period=None, format=fmt, output=str(path), no_personal_data=not personal)) == 0
    if fmt == "xlsx":
        book = load_workbook(path, read_only=True)
        sheets = {}
        for title in ("cases", "events"):
            header, *rows = list(book[title].iter_rows(values_only=True))
            sheets[title] = [{str(h): "" if v is None else str(v) for h, v in zip(header, r, strict=True)}
                             for r in rows]
        return sheets
    out = {}
    for title, file in (("cases", path), ("events", path.with_name(f"{path.stem}-events.csv"))):
        with file.open(newline="", encoding="utf-8-sig") as fh:
            out[title] = list(csv.DictReader(fh))
    return out


# --- the cases of one worked example ---------------------------------------------------------

LATIN = {"summary": "Flooded road in front of Sok Dara's house",
         "description": "My name is Sok Dara, call me on +855 12 345 678 or dara.sok@gmail.com. "
                        "The road has been flooded since 05-03-2026; 40 families cannot pass.",
         "name": "Sok Dara", "contact": "012 345 678"}
KHMER = {"summary": "ផ្លូវលិចទឹក",
         "description": "ខ្ញុំបាទឈ្មោះ ចាន់ ធីតា លេខទូរស័ព្ទ ០៩៧ ១២៣ ៤៥៦៧។ ខ្ញុំឈ្មោះចាន់ធីតា សូមជួយ។",
         "name": "ចាន់ ធីតា", "contact": "097 123 4567"}
DUPLICATE = {"name": "Keo Vanna", "contact": "011 222 333"}
NOTES = ["Called Sok Dara on 012-345-678: he confirms, water 40 cm deep.",
         "Keo Vanna (011 222 333) asks the same; merged.",
         "Spoke with Mr. Dara at the site, see t.me/darasok"]
SECRETS = ["Sok", "Dara", "345", "dara.sok", "ចាន់", "ធីតា", "៤៥៦៧", "Keo", "Vanna", "222 333", "darasok"]
KEPT = ["call me on", "05-03-2026", "40 families", "ផ្លូវលិចទឹក", "សូមជួយ", "water 40 cm deep", "merged"]


async def worked_example(domain: Domain, clock: Clock) -> tuple[int, int]:
    latin = await domain.new_case(clock, summary=LATIN["summary"], description=LATIN["description"],
                                  citizen_name=LATIN["name"], citizen_contact=LATIN["contact"])
    khmer = await domain.new_case(clock, summary=KHMER["summary"], description=KHMER["description"],
                                  citizen_name=KHMER["name"], citizen_contact=KHMER["contact"])
    duplicate = await domain.new_case(clock, summary="Flooded road", description="Same road.",
                                      citizen_name=DUPLICATE["name"], citizen_contact=DUPLICATE["contact"])
    await domain.cases.apply(duplicate, Action.MERGE, WG_ACTOR, Change(into=latin, text="same road"), clock())
    for note in NOTES:
        await domain.cases.apply(latin, Action.NOTE, WG_ACTOR, Change(text=note), clock())
    await domain.cases.apply(khmer, Action.NOTE, WG_ACTOR, Change(text="បានទូរស័ព្ទទៅ ០៩៧១២៣៤៥៦៧ ហើយ"),
                             clock())
    return latin, khmer


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_without_personal_data_the_texts_are_scrubbed(domain: Domain, clock: Clock, tmp_path: Path,
                                                             fmt: str) -> None:
    latin, khmer = await worked_example(domain, clock)
    sheets = await export(domain, tmp_path / f"nopd.{fmt}", fmt, personal=False)
    cases = {int(r["case"]): r for r in sheets["cases"]}
    assert "citizen_name" not in sheets["cases"][0] and "citizen_contact" not in sheets["cases"][0]
    assert cases[latin]["summary"] == f"Flooded road in front of {REMOVED}'s house"
    assert cases[latin]["description"] == (
        f"My name is {REMOVED}, call me on {REMOVED} or {REMOVED}. The road has been flooded since 05-03-2026; "
        "40 families cannot pass.")
    assert cases[khmer]["description"] == f"ខ្ញុំបាទឈ្មោះ {REMOVED} លេខទូរស័ព្ទ {REMOVED}។ ខ្ញុំឈ្មោះ{REMOVED} សូមជួយ។"
    notes = [e["note"] for e in sheets["events"] if int(e["case"]) == latin and e["action"] == "note"]
    assert notes == [f"Called {REMOVED} on {REMOVED}: he confirms, water 40 cm deep.",
                     f"{REMOVED} ({REMOVED}) asks the same; merged.",  # the merged duplicate's citizen
                     f"Spoke with Mr. {REMOVED} at the site, see {REMOVED}"]
    everything = json.dumps(sheets, ensure_ascii=False)
    for secret in SECRETS:
        assert secret not in everything, secret
    for kept in KEPT:
        assert kept in everything, kept


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
async def test_with_personal_data_the_texts_are_as_written(domain: Domain, clock: Clock, tmp_path: Path,
                                                           fmt: str) -> None:
    latin, khmer = await worked_example(domain, clock)
    sheets = await export(domain, tmp_path / f"all.{fmt}", fmt, personal=True)
    cases = {int(r["case"]): r for r in sheets["cases"]}
    assert cases[latin]["description"] == LATIN["description"]
    assert cases[khmer]["citizen_name"] == KHMER["name"] and cases[khmer]["description"] == KHMER["description"]
    assert NOTES[0] in [e["note"] for e in sheets["events"]]


# --- a realistic backlog -----------------------------------------------------------------------

FAMILY = ["Sok", "Chan", "Keo", "Meas", "Prak", "Heng", "Chea", "Nget", "Touch", "Srun"]
GIVEN = ["Dara", "Sophea", "Lina", "Vuthy", "Sreymom", "Pisey", "Rithy", "Bopha", "Kosal", "Sothea"]
FAMILY_KM = ["សុខ", "ចាន់", "កែវ", "មាស", "ប្រាក់", "ហេង", "ជា", "ង៉ែត", "ទូច", "ស្រ៊ុន"]
GIVEN_KM = ["ដារា", "សុភា", "លីណា", "វុទ្ធី", "ស្រីមុំ", "ពិសី", "ឫទ្ធី", "បុប្ផា", "កុសល", "សុធា"]
PROBLEMS = ["The road to the market has been flooded since 12-08-2025.",
            "My land title (No. 2019-0457) was issued twice; I paid 1,500,000 riel.",
            "The commune office asks 50,000 riel for a birth certificate.",
            "ផ្លូវទៅផ្សារលិចទឹកតាំងពីខែសីហា។", "ខ្ញុំសុំលិខិតបញ្ជាក់កំណើតសម្រាប់កូនប្រុស។",
            "Electricity is cut every evening in village 3, 120 families."]


def phone(rng: random.Random) -> tuple[str, str]:
    """(as the contact column holds it, as the citizen wrote it in the text)."""
    prefix = rng.choice(["012", "097", "088", "011", "077", "093", "016"])
    rest = "".join(rng.choice("0123456789") for _ in range(rng.choice([6, 7])))
    contact = f"{prefix} {rest[:3]} {rest[3:]}"
    n = prefix[1:] + rest
    written = rng.choice([
        contact, f"{prefix}-{rest[:3]}-{rest[3:]}", f"{prefix}.{rest[:3]}.{rest[3:]}", f"{prefix}{rest}",
        f"+855 {n[:2]} {n[2:5]} {n[5:]}", f"+855{n}", f"(+855) {n}", f"855-{n[:2]}-{n[2:]}",
        contact.translate(TO_KHMER), f"+855 (0){n[:2]} {n[2:]}"])
    return contact, written


# How citizens write their name and number into a request: (as written, as exported without
# personal data).
LATIN_WAYS = [
    ("My name is {family} {given}, call me on {phone}. {problem}", "My name is {R}, call me on {R}. {problem}"),
    ("{problem} Please call {given} {FAMILY} at {phone}.", "{problem} Please call {R} at {R}."),
    ("{problem} Contact: Mr. {given} ({phone})", "{problem} Contact: Mr. {R} ({R})"),
    ("I am {given}, tel:{phone}. {problem}", "I am {R}, tel:{R}. {problem}"),
]
KHMER_WAYS = [
    ("ខ្ញុំបាទឈ្មោះ {family} {given} លេខទូរស័ព្ទ {phone}។ {problem}", "ខ្ញុំបាទឈ្មោះ {R} លេខទូរស័ព្ទ {R}។ {problem}"),
    ("ខ្ញុំឈ្មោះ{family}{given} សូមទាក់ទងតាមលេខ {phone} {problem}", "ខ្ញុំឈ្មោះ{R} សូមទាក់ទងតាមលេខ {R} {problem}"),
    ("{problem} សូមទូរស័ព្ទមកលោក{given}៖{phone}", "{problem} សូមទូរស័ព្ទមកលោក{R}៖{R}"),
    ("{problem} ({family} {given}, {phone})", "{problem} ({R}, {R})"),
]


def backlog(rng: random.Random, n: int = 1438, with_data: int = 137) -> list[tuple[str, str, str, str, str]]:
    """(summary, description, name, contact, the description as exported without personal data),
    as in the issue: 137 of 1,438 descriptions name the citizen and give a phone number."""
    rows = []
    for i in range(n):
        khmer = rng.random() < 0.5
        family, given = (rng.choice(FAMILY_KM), rng.choice(GIVEN_KM)) if khmer else (
            rng.choice(FAMILY), rng.choice(GIVEN))
        contact, written = phone(rng)
        problem = rng.choice(PROBLEMS)
        description = expected = problem
        if i % (n // with_data) == 0 and i // (n // with_data) < with_data:
            way, scrubbed = rng.choice(KHMER_WAYS if khmer else LATIN_WAYS)
            description = way.format(family=family, given=given, FAMILY=family.upper(), phone=written,
                                     problem=problem)
            expected = scrubbed.format(R=REMOVED, problem=problem)
        rows.append((problem[:60], description, f"{family} {given}", contact, expected))
    assert sum(r[1] != r[4] for r in rows) == with_data
    return rows


async def test_a_realistic_backlog_leaks_no_name_and_no_number(domain: Domain, tmp_path: Path) -> None:
    rng = random.Random(15)
    rows = backlog(rng)
    cat, unit = await domain.category_id("land"), await domain.unit_id("pp-dp")
    received = datetime(2025, 1, 6, 5, tzinfo=UTC)
    created, _skipped = await domain.cases.import_cases(SYSTEM, [
        ImportedCase(f"B-{i}", received + timedelta(hours=i), "phone", cat, unit, summary, description, name,
                     contact, Status.IN_PROGRESS) for i, (summary, description, name, contact, _h) in enumerate(rows)],
        datetime(2026, 11, 2, tzinfo=UTC))
    assert len(created) == 1438
    sheets = await export(domain, tmp_path / "backlog.xlsx", "xlsx", personal=False)
    exported = {int(r["case"]): r["description"] for r in sheets["cases"]}
    for case, (_summary, description, name, contact, expected) in zip(created, rows, strict=True):
        text = exported[case]
        # The name and the number gone, however written; nothing else taken (dates, amounts, a
        # land title's number, Khmer words that hold a part of the name all stay).
        assert text == expected, (case, description)
        assert digits(contact)[-6:] not in digits(text) or digits(contact)[-6:] in digits(expected)
        assert not any(part in text.split() for part in name_parts(name))


# --- through Telegram ----------------------------------------------------------------------------

async def test_export_nopd_in_telegram(bot: Bot) -> None:
    n = await make_case(bot, citizen_name="Chan Lina", citizen_contact="099 111 222",
                        description="I am Chan Lina, my phone is 099 111 222, the bridge fell.")
    wg = bot.private(bot.wg)
    for who, chat, command, personal in ((bot.wg, wg, "/export", True), (bot.wg, wg, "/export nopd", False),
                                         (bot.wg, bot.wg_chat, "/export", False),
                                         (bot.supervisor, bot.private(bot.supervisor), "/export", False)):
        m = await bot.say(who, chat, command)
        [doc] = bot.sent_since(m, None, "sendDocument")
        book = load_workbook(io.BytesIO(doc.files["document"].content), read_only=True)
        header, *rows = list(book["cases"].iter_rows(values_only=True))
        case = next(dict(zip(header, r, strict=True)) for r in rows if r[0] == n)
        if personal:
            assert case["description"] == "I am Chan Lina, my phone is 099 111 222, the bridge fell."
        else:
            assert case["description"] == f"I am {REMOVED}, my phone is {REMOVED}, the bridge fell.", command


# --- the public figures and reports carry no case text ---------------------------------------------

async def test_reports_and_public_figures_carry_no_case_text(domain: Domain, clock: Clock, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    await worked_example(domain, clock)
    reports = ReportService(domain.db, domain.units, domain.settings.tz)
    now = clock()
    month = parse_period(now.astimezone(domain.settings.tz).strftime("%Y-%m"), domain.settings.tz)
    public = await reports.public(now)
    texts = [render_report(await reports.report(month, None, now)), *fairness_lines(public, None),
             *fairness_lines(await reports.fairness(month, None, now), month),
             stats_markdown(public), json.dumps(public, ensure_ascii=False)]
    assert await cli_stats(domain.settings, argparse.Namespace(format="json")) == 0
    assert await cli_stats(domain.settings, argparse.Namespace(format="md")) == 0
    texts.append(capsys.readouterr().out)
    everything = "\n".join(texts)
    for secret in [*SECRETS, "Flooded road", "ផ្លូវលិចទឹក", "families", "water", "same road"]:
        assert secret not in everything, secret


async def test_stats_and_report_in_telegram_carry_no_case_text(bot: Bot) -> None:
    await make_case(bot, citizen_name="Chan Lina", citizen_contact="099 111 222", summary="Bridge fell",
                    description="I am Chan Lina, 099 111 222")
    m = await bot.say(bot.stranger, bot.private(bot.stranger), "/stats")
    m2 = await bot.say(bot.wg, bot.private(bot.wg), "/report 2026-11")
    text = "\n".join([*bot.texts_since(m), *bot.texts_since(m2)])
    assert "Public figures" in text and "Of the 1 requests" in text, text
    for secret in ("Chan", "Lina", "099", "Bridge"):
        assert secret not in text
