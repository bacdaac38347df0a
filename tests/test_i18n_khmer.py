"""Khmer: every message of the template is translated, and the main walk runs in Khmer end to end
without a word of English leaking out of the bot (texts, toasts, buttons, command menus)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR
from bot.jobs.reminders import run_once
from tests.conftest import DP_CHAT, OFFICIAL, PP_CHAT, SR_CHAT, SUPERVISOR, WG, WG_CHAT, Clock
from tests.fakebotapi import FakeBotAPI
from tests.harness import Bot, running_bot

JSON = dict[str, Any]

# --- the catalogs ----------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
HTML_TAG = re.compile(r"</?(?:b|i|code)>|<a\s[^<>]*>|</a>")
ENTITY = re.compile(r"&(?:lt|gt|amp|quot);")
COMMAND = re.compile(r"(?<![\w&])/[a-z_]+")
LEADING_SYMBOLS = re.compile(r"^[^\w\s#“/({<]+")
KHMER = re.compile(r"[\u1780-\u17FF]")
# Latin words a Khmer text keeps as they are: command keywords, formats, names of things.
KEPT_LATIN = ("in_progress", "waiting_info", "workgroup", "confirmed|unreachable|disputed",
              "off|on", "YYYY-MM-DD", "2026-04-30", "2026-Q2", "--skip-invalid", "in_person")
BRANDS = {"telegram", "casebot"}
# Usage lines made only of a command and its keywords (they stay in Latin script).
KEYWORDS_ONLY = {"off", "on", "nopd", "yyyy", "yyyy-mm", "yyyy-qn", "km", "en"}


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain="casebot")


def template() -> Catalog:
    return read_catalog(LOCALES_DIR / "casebot.pot")


def khmer() -> Catalog:
    return read_catalog(LOCALES_DIR / "km" / "LC_MESSAGES" / "casebot.po", locale="km")


def ids_of(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def strings_of(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


# --- English fragments: 3+ consecutive words of a catalog message, or a short message whole ----

WORD = r"[A-Za-z]+(?:['’-][A-Za-z]+)*"
RUN = re.compile(rf"{WORD}(?: {WORD})*")
ANY_TAG = re.compile(r"<[^<>]*>")


def latin_runs(text: str) -> list[list[str]]:
    """Runs of Latin words separated by single spaces, once placeholders, tags, entities and
    command names are taken out (each of those breaks a run)."""
    for pattern in (PLACEHOLDER, ANY_TAG, ENTITY, COMMAND):
        text = pattern.sub("\x00", text)
    return [m.group().lower().split(" ") for m in RUN.finditer(text)]


def trigrams(text: str) -> set[tuple[str, ...]]:
    return {tuple(run[i:i + 3]) for run in latin_runs(text) for i in range(len(run) - 2)}


def english_fragments() -> set[tuple[str, ...]]:
    """Every 3-word fragment of the template, and every shorter message as a whole (a button
    such as "✅ Accept" or "Done"), save the names that Khmer keeps (Telegram, casebot)."""
    fragments: set[tuple[str, ...]] = set()
    for m in template():
        for source in ids_of(m) if m.id else ():
            fragments |= trigrams(source)
            runs = latin_runs(source)
            if len(runs) == 1 and len(runs[0]) < 3 and not PLACEHOLDER.search(source) and (
                    set(runs[0]) - BRANDS):
                fragments.add(("=", source.strip().lower()))
    return fragments


def leaks(texts: Iterable[str], fragments: set[tuple[str, ...]]) -> list[tuple[str, str]]:
    """(fragment, text) for every English catalog fragment found in a text."""
    out = []
    for text in texts:
        found = trigrams(text) | {("=", line.strip().lower()) for line in text.split("\n")}
        if found := found & fragments:
            out.append((" ".join(sorted(found)[0]), text))
    return out


# --- 1. the catalog ------------------------------------------------------------------------------

def test_every_template_message_has_a_khmer_translation() -> None:
    pot, km = template(), khmer()
    assert km.plural_forms == "nplurals=1; plural=0;"
    problems: list[str] = []
    count = 0
    for m in pot:
        if not m.id:
            continue
        count += 1
        ids = ids_of(m)
        k = km.get(m.id)
        if k is None:
            problems.append(f"no Khmer entry: {ids[0]!r}")
            continue
        strings = strings_of(k)
        if k.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if len(ids) > 1 and len(strings) != 1:
            problems.append(f"Khmer has one plural form: {ids[0]!r} has {len(strings)}")
        for s in strings:
            if not s:
                problems.append(f"not translated: {ids[0]!r}")
                continue
            if set(PLACEHOLDER.findall(s)) != set(PLACEHOLDER.findall(" ".join(ids))):
                problems.append(f"placeholders differ: {ids[0]!r} -> {s!r}")
            if Counter(HTML_TAG.findall(s)) != Counter(HTML_TAG.findall(ids[0])):
                problems.append(f"HTML tags differ: {ids[0]!r} -> {s!r}")
            if Counter(ENTITY.findall(s)) != Counter(ENTITY.findall(ids[0])):
                problems.append(f"HTML entities differ: {ids[0]!r} -> {s!r}")
            if Counter(COMMAND.findall(s)) != Counter(COMMAND.findall(ids[0])):
                problems.append(f"command names differ: {ids[0]!r} -> {s!r}")
            lead = LEADING_SYMBOLS.match(ids[0])
            if lead and not s.startswith(lead.group()):
                problems.append(f"leading symbol lost: {ids[0]!r} -> {s!r}")
            for kept in KEPT_LATIN:
                if kept in ids[0] and kept not in s:
                    problems.append(f"{kept!r} must stay in Latin script: {ids[0]!r} -> {s!r}")
            words = {w for run in latin_runs(ids[0]) for w in run} - BRANDS
            if {w.lower() for w in words} <= KEYWORDS_ONLY:
                words = set()
            if words and not KHMER.search(s):
                problems.append(f"not Khmer: {ids[0]!r} -> {s!r}")
            if trigrams(s) & trigrams(" ".join(ids)):
                problems.append(f"English left in the translation: {ids[0]!r} -> {s!r}")
    extra = [m.id for m in km if m.id and pot.get(m.id) is None]
    assert count > 400 and not extra, extra
    assert not problems, "\n".join(problems)


def test_the_language_switch_says_khmer_in_khmer() -> None:
    k = khmer().get("From now on I write in English here.")
    assert k is not None and k.string == "ចាប់ពីពេលនេះ ខ្ញុំនឹងសរសេរជាភាសាខ្មែរនៅទីនេះ។"


def test_the_leak_detector_finds_english() -> None:
    fragments = english_fragments()
    assert leaks(["#1 is resolved; the working group will verify it with the citizen."], fragments)
    assert leaks(["<b>#3</b> · ⏰ #3 (ខណ្ឌ) is still not accepted, 2 days"], fragments)
    assert leaks(["ok", "✅ Accept"], fragments) == [("= ✅ accept", "✅ Accept")]
    assert not leaks(["/new — /digest on · in_progress ឬ waiting_info · Telegram, Facebook"], fragments)
    assert not leaks(["Telegram", "casebot", "English", "012 345 678"], fragments)
    assert not leaks(["ចាប់ពីពេលនេះ ខ្ញុំនឹងសរសេរជាភាសាខ្មែរនៅទីនេះ។"], fragments)


# --- 2. the walk in Khmer -------------------------------------------------------------------------

# The ministry of conftest, named in Khmer: unit and category names show in the texts.
KM_UNITS = [
    {"key": "moi", "name": "ក្រសួងមហាផ្ទៃ", "kind": "ministry"},
    {"key": "pp", "name": "រាជធានីភ្នំពេញ", "kind": "province", "parent": "moi", "chat_id": PP_CHAT},
    {"key": "pp-dp", "name": "ខណ្ឌដូនពេញ", "kind": "district", "parent": "pp", "chat_id": DP_CHAT},
    {"key": "pp-ck", "name": "ខណ្ឌចំការមន", "kind": "district", "parent": "pp"},
    {"key": "sr", "name": "ខេត្តសៀមរាប", "kind": "province", "parent": "moi", "chat_id": SR_CHAT},
    {"key": "mlm", "name": "ក្រសួងរៀបចំដែនដី", "kind": "external"},
]
KM_CATEGORIES = [
    {"key": "land", "name": "វិវាទដីធ្លី"},
    {"key": "docs", "name": "ឯកសារអត្រានុកូលដ្ឋាន"},
]
DP = "ខណ្ឌដូនពេញ"
LATIN_MONTH = re.compile(r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\b")


def labels(message: JSON) -> list[str]:
    return [label for label, _data in FakeBotAPI.buttons(message)]


def data_of(message: JSON, predicate: Any) -> str:
    for _label, data in FakeBotAPI.buttons(message):
        if data and predicate(data):
            return data
    raise AssertionError(f"no such button in {FakeBotAPI.buttons(message)}")


async def press_data(bot: Bot, user: JSON, message: JSON, predicate: Any) -> int:
    """Press a button chosen by its callback data (never by its label)."""
    data = data_of(message, predicate)
    return await bot.press(user, message["chat"]["id"], message["message_id"], data)


def last(bot: Bot, chat_id: int) -> JSON:
    return bot.last_bot_message(chat_id)


def card_data(code: str) -> Any:
    """Matches the callback data of a card-action button: c:<case>:<version>:<code>."""
    return lambda data: data.startswith("c:") and data.endswith(f":{code}")


def newest_with_button(bot: Bot, chat_id: int, predicate: Any) -> JSON:
    """The newest bot message in a chat that carries a button whose callback data matches."""
    found = [m for (c, _mid), m in bot.api.messages.items()
             if c == chat_id and any(d and predicate(d) for _l, d in FakeBotAPI.buttons(m))]
    assert found, f"no message with such a button in chat {chat_id}"
    return max(found, key=lambda m: m["message_id"])


def everything_the_bot_said(api: FakeBotAPI) -> list[str]:
    """Texts, captions, toasts, button labels and the Khmer command menus the bot sent."""
    out = list(api.sent_texts())
    for call in api.calls:
        if not call.ok:
            continue
        params = call.params
        if call.method == "answerCallbackQuery" and params.get("text"):
            out.append(str(params["text"]))
        if params.get("caption"):
            out.append(str(params["caption"]))
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            out += [str(b.get("text")) for row in markup.get("inline_keyboard") or [] for b in row]
        if call.method == "setMyCommands" and params.get("language_code") == "km":
            out += [str(c.get("description")) for c in params.get("commands") or []]
    for message in list(api.messages.values()):
        out += labels(message)
    return out


async def speak_khmer(bot: Bot) -> tuple[JSON, JSON, JSON]:
    """The working group member, the Daun Penh official and the Phnom Penh supervisor, with a
    Khmer Telegram, choose Khmer for their private chats."""
    api = bot.api
    wg = api.user(WG, "សុភា", username="sophea_wg", language_code="km")
    official = api.user(OFFICIAL, "ដារា", username="dara", language_code="km")
    supervisor = api.user(SUPERVISOR, "សុខា", username="sokha", language_code="km")
    switched = "ចាប់ពីពេលនេះ ខ្ញុំនឹងសរសេរជាភាសាខ្មែរនៅទីនេះ។"

    chat = bot.private(wg)
    await bot.say(wg, chat, "/lang")
    menu = last(bot, chat["id"])
    assert menu["text"] == "ភាសា៖ ខ្មែរ។ សូមជ្រើសរើស៖"
    assert labels(menu) == ["ខ្មែរ", "English"]
    m = await press_data(bot, wg, menu, lambda d: d == "lang:km")
    assert bot.texts_since(m, chat["id"]) == [switched]
    for person in (official, supervisor):
        m = await bot.say(person, bot.private(person), "/lang km")
        assert bot.texts_since(m) == [switched]
    return wg, official, supervisor


async def create_first_case(bot: Bot, wg: JSON) -> None:
    """/new as the working group member, every answer by a button or in Khmer, to Create."""
    services = bot.services
    chat = bot.private(wg)
    cid = chat["id"]
    pp, dp = (await services.units.by_key("pp")).id, (await services.units.by_key("pp-dp")).id
    land = next(c.id for c in await services.units.categories() if c.key == "land")

    await bot.say(wg, chat, "/new")
    assert last(bot, cid)["text"] == "ករណីថ្មី។ តើសំណើនេះមកពីប្រភពណា?"
    assert "សារ Facebook" in labels(last(bot, cid))
    await press_data(bot, wg, last(bot, cid), lambda d: d == "ns:facebook_message")
    assert "ប្រភេទណា?" in last(bot, cid)["text"]
    await press_data(bot, wg, last(bot, cid), lambda d: d == f"nc:{land}")
    picker = last(bot, cid)
    assert "តើអង្គភាពណាពាក់ព័ន្ធ?" in picker["text"] and "ទំព័រ 1/1" in picker["text"]
    assert labels(picker) == ["✓ ក្រសួងមហាផ្ទៃ", "រាជធានីភ្នំពេញ ›", "ខេត្តសៀមរាប"]
    await press_data(bot, wg, picker, lambda d: d == f"np:{pp}:0")
    picker = last(bot, cid)
    assert "‹ ថ្នាក់លើ" in labels(picker)
    await press_data(bot, wg, picker, lambda d: d == f"nu:{dp}")
    assert "សេចក្ដីសង្ខេបមួយបន្ទាត់" in last(bot, cid)["text"]

    m = await bot.say(wg, chat, "ខក")  # too short: asked again, with the reason
    assert bot.texts_since(m) == ["សេចក្ដីសង្ខេបត្រូវមានពី 3 ដល់ 200 តួអក្សរ។ សូមព្យាយាមម្ដងទៀត។"]
    await bot.say(wg, chat, "វិវាទព្រំដី <របង> & គ្រួសារ")
    assert last(bot, cid)["text"] == "ឈ្មោះរបស់ពលរដ្ឋ?"
    await bot.say(wg, chat, "សុខ ដារា")
    assert labels(last(bot, cid)) == ["រំលង"]
    await bot.say(wg, chat, "012 345 678")
    await bot.say(wg, chat, "អ្នកជិតខាងបានរំកិលរបងចូលក្នុងដីពីរម៉ែត្រ។")
    assert "សូមផ្ញើរូបថត ឬឯកសារឥឡូវនេះ" in last(bot, cid)["text"]
    m = await bot.say(wg, chat, "គ្មានរូបថតទេ")  # text where a photo is expected
    assert bot.texts_since(m) == ["សូមផ្ញើរូបថត ឬឯកសារ ឬចុច «រួចរាល់»។"]
    bot.api.send_photo(wg, chat, file_id="PHOTO-INTAKE")
    await bot.settle()
    assert last(bot, cid)["text"] == "បានភ្ជាប់ (1)។ ផ្ញើបន្ថែម ឬចុច «រួចរាល់»។"
    await press_data(bot, wg, last(bot, cid), lambda d: d == "nd:done")

    confirm = last(bot, cid)
    for expected in ("ពិនិត្យករណីថ្មី", "ប្រភព៖ សារ Facebook", "ប្រភេទ៖ វិវាទដីធ្លី", f"អង្គភាព៖ {DP}",
                     "អាទិភាព៖ ធម្មតា", "សេចក្ដីសង្ខេប៖ វិវាទព្រំដី <របង> & គ្រួសារ",
                     "ពលរដ្ឋ៖ សុខ ដារា", "ទំនាក់ទំនង៖ 012 345 678", "ឯកសារភ្ជាប់៖ 1", "វិច្ឆិកា"):
        assert expected in confirm["text"], (expected, confirm["text"])
    assert labels(confirm) == ["✅ បង្កើត", "✏️ កែសម្រួល…", "កំណត់ជាបន្ទាន់", "✖️ បោះបង់"]

    # Edit the summary, and mark the case urgent, before creating it.
    await press_data(bot, wg, confirm, lambda d: d == "nf:edit")
    fields = last(bot, cid)
    assert fields["text"] == "តើលោកអ្នកចង់កែប្រែអ្វី?"
    assert labels(fields) == ["ប្រភព", "ថ្ងៃទទួល", "ប្រភេទ", "អង្គភាព", "សេចក្ដីសង្ខេប", "ពលរដ្ឋ",
                              "ទំនាក់ទំនង", "ព័ត៌មានលម្អិត", "ឯកសារភ្ជាប់"]
    await press_data(bot, wg, fields, lambda d: d == "ne:summary")
    await bot.say(wg, chat, "វិវាទព្រំដីជាមួយអ្នកជិតខាង")
    m = await press_data(bot, wg, last(bot, cid), lambda d: d == "nf:urgent")
    assert "បន្ទាន់" in bot.answers_since(m)
    confirm = last(bot, cid)
    assert "អាទិភាព៖ បន្ទាន់" in confirm["text"] and "កំណត់ជាធម្មតា" in labels(confirm)

    m = await press_data(bot, wg, confirm, lambda d: d == "nf:create")
    created = last(bot, cid)
    assert created["text"] == "បានបង្កើតករណី #1។ តើប្រគល់ករណីនេះឥឡូវនេះទេ?"
    assert labels(created) == [f"ប្រគល់ទៅ {DP}", "ប្រគល់ទៅអង្គភាពផ្សេង…", "បញ្ជូនបន្តទៅស្ថាប័នផ្សេង…"]
    assert any(t.startswith("សុភា បានបង្កើតករណី #1៖") for t in bot.texts_since(m, WG_CHAT))

    m = await press_data(bot, wg, created, lambda d: d == f"as:1:{dp}")
    assert last(bot, cid)["text"] == f"បានប្រគល់ករណី #1 ទៅ {DP}។"
    assert any(f"សុភា៖ បានប្រគល់ → {DP}" in t for t in bot.texts_since(m, WG_CHAT))


async def work_the_first_case(bot: Bot, wg: JSON, official: JSON) -> None:
    """In the Daun Penh chat: Accept, Need info (answered by the working group), Resolved…"""
    card = bot.card(DP_CHAT, 1)
    for expected in ("វិវាទដីធ្លី · 🔴 បន្ទាន់", f"📍 {DP}\n", "ទទួល 2 វិច្ឆិកា 2026 (0 ថ្ងៃមុន) តាម សារ Facebook",
                     "⏳ កាលកំណត់ 5 វិច្ឆិកា 2026", "👤 សុខ ដារា · 012 345 678",
                     "📎 ឯកសារភ្ជាប់ 1 — /case 1 ដើម្បីមើល", "បានប្រគល់ — រង់ចាំការទទួលយក"):
        assert expected in card["text"], (expected, card["text"])
    assert labels(card) == ["✅ ទទួលយក", "❓ ត្រូវការព័ត៌មាន", "↩️ មិនមែនសមត្ថកិច្ច", "✔️ បានដោះស្រាយ…"]

    m = await press_data(bot, official, card, card_data("acc"))
    assert bot.answers_since(m) == ["បានទទួលយកករណី #1៖ ករណីនេះកំពុងដោះស្រាយ។"]
    card = bot.card(DP_CHAT, 1)
    assert "កំពុងដោះស្រាយ · ដារា ទទួលបន្ទុក" in card["text"]
    assert labels(card) == ["❓ ត្រូវការព័ត៌មាន", "↩️ មិនមែនសមត្ថកិច្ច", "✔️ បានដោះស្រាយ…"]

    await press_data(bot, official, card, card_data("inf"))
    question = last(bot, DP_CHAT)
    assert question["text"] == "ដារា, តើត្រូវការព័ត៌មានអ្វីខ្លះសម្រាប់ករណី #1? (/cancel ដើម្បីឈប់)"
    await bot.reply_to_last(official, bot.dp_chat, "សូមផ្ដល់លេខប័ណ្ណកម្មសិទ្ធិដីធ្លី")
    assert "រង់ចាំព័ត៌មាន" in bot.card(DP_CHAT, 1)["text"]
    to_wg = newest_with_button(bot, WG_CHAT, lambda d: d == "ans:1")
    assert "ត្រូវការ៖ សូមផ្ដល់លេខប័ណ្ណកម្មសិទ្ធិដីធ្លី" in to_wg["text"]
    assert labels(to_wg) == ["ឆ្លើយ…"]
    await press_data(bot, wg, to_wg, lambda d: d == "ans:1")
    m = await bot.reply_to_last(wg, bot.wg_chat, "ប័ណ្ណលេខ 123/45 ចេញឆ្នាំ 2019")
    assert "ចម្លើយពីក្រុមការងារលើករណី #1៖ ប័ណ្ណលេខ 123/45 ចេញឆ្នាំ 2019" in bot.texts_since(m, DP_CHAT)
    assert "កំពុងដោះស្រាយ" in bot.card(DP_CHAT, 1)["text"]

    await press_data(bot, official, bot.card(DP_CHAT, 1), card_data("res"))
    m = await bot.reply_to_last(official, bot.dp_chat, "រួច")  # under 10 characters
    assert bot.texts_since(m, DP_CHAT)[-1].startswith(
        "សូមរៀបរាប់អ្វីដែលបានធ្វើ យ៉ាងតិច 10 តួអក្សរ។ សូមព្យាយាមម្ដងទៀត ឬ /cancel។\n")
    await bot.reply_to_last(official, bot.dp_chat, "បានរំកិលរបងត្រឡប់វិញ ហើយគ្រួសារទាំងពីរបានចុះហត្ថលេខា")
    evidence_prompt = last(bot, DP_CHAT)
    assert "ភស្តុតាង" in evidence_prompt["text"] and labels(evidence_prompt) == ["រំលង"]
    m = bot.api.mark()
    bot.api.send_photo(official, bot.dp_chat, file_id="PHOTO-EVIDENCE",
                       reply_to_message_id=evidence_prompt["message_id"])
    await bot.settle()
    assert bot.texts_since(m, DP_CHAT) == []  # the question for evidence became the confirmation
    assert bot.api.messages[(DP_CHAT, evidence_prompt["message_id"])]["text"] == (
        "✅ បានដោះស្រាយករណី #1។ ក្រុមការងារនឹងផ្ទៀងផ្ទាត់ជាមួយពលរដ្ឋ។ ឯកសារ 1 ជាភស្តុតាង។")
    card = bot.card(DP_CHAT, 1)
    assert "បានដោះស្រាយ — រង់ចាំការផ្ទៀងផ្ទាត់" in card["text"] and labels(card) == []
    verify = newest_with_button(bot, WG_CHAT, card_data("cfm"))
    assert "សូមផ្ទៀងផ្ទាត់ជាមួយពលរដ្ឋ៖" in verify["text"]
    assert labels(verify) == ["✅ ពលរដ្ឋបានបញ្ជាក់", "📵 ទាក់ទងមិនបាន", "⚠️ ពលរដ្ឋជំទាស់…", "↩️ បើកឡើងវិញ…"]


async def show_the_history(bot: Bot, wg: JSON) -> None:
    m = await bot.say(wg, bot.private(wg), "/case 1")
    shown = "\n".join(bot.texts_since(m))
    for step in ("<b>ប្រវត្តិ</b>", "· សុភា · បានបង្កើត", "· សុភា · បានប្រគល់", "· ដារា · បានទទួលយក",
                 "· ដារា · បានស្នើសុំព័ត៌មាន", "· សុភា · បានផ្ដល់ព័ត៌មាន", "· ដារា · បានដោះស្រាយ",
                 "(ថ្មី — ក្នុងជួររង់ចាំរបស់ក្រុមការងារ → បានប្រគល់ — រង់ចាំការទទួលយក)",
                 "សូមផ្ដល់លេខប័ណ្ណកម្មសិទ្ធិដីធ្លី", "ប័ណ្ណលេខ 123/45", "2 វិច្ឆិកា 2026, 09:00",
                 "សុខ ដារា"):
        assert step in shown, (step, shown)


async def second_case_from_a_forward(bot: Bot, wg: JSON, official: JSON, clock: Clock) -> None:
    """A citizen's forwarded message becomes case #2, assigned by command and accepted."""
    services = bot.services
    chat = bot.private(wg)
    cid = chat["id"]
    docs = next(c.id for c in await services.units.categories() if c.key == "docs")
    pp, dp = (await services.units.by_key("pp")).id, (await services.units.by_key("pp-dp")).id
    bot.api.forward_message(wg, chat, "សូមជួយខ្ញុំស្នើសុំសំបុត្រកំណើតថ្មី",
                            origin_date=int(clock().timestamp()) - 86400, origin_sender_name="ពលរដ្ឋ")
    await bot.settle()
    offer = last(bot, cid)
    assert offer["text"] == "បង្កើតករណីពីសារនេះទេ?" and labels(offer) == ["បង្កើតករណីពីសារនេះ"]
    m = await press_data(bot, wg, offer, lambda d: d.startswith("fwd:"))
    assert bot.texts_since(m)[0] == "ករណីថ្មីពីសារដែលបានបញ្ជូនបន្ត (ទទួល 1 វិច្ឆិកា 2026, 09:00)។"
    await press_data(bot, wg, last(bot, cid), lambda d: d == f"nc:{docs}")
    await press_data(bot, wg, last(bot, cid), lambda d: d == f"np:{pp}:0")
    await press_data(bot, wg, last(bot, cid), lambda d: d == f"nu:{dp}")
    await bot.say(wg, chat, "ស្នើសុំសំបុត្រកំណើតថ្មី")
    await bot.say(wg, chat, "ចាន់ សុផល")
    await press_data(bot, wg, last(bot, cid), lambda d: d == "nk:contact")
    assert labels(last(bot, cid)) == ["រក្សាអត្ថបទដែលបានបញ្ជូនបន្ត"]
    await press_data(bot, wg, last(bot, cid), lambda d: d == "nk:keep")
    await press_data(bot, wg, last(bot, cid), lambda d: d == "nd:done")
    confirm = last(bot, cid)
    assert "ប្រភព៖ Telegram" in confirm["text"] and "ទំនាក់ទំនង៖ —" in confirm["text"]
    await press_data(bot, wg, confirm, lambda d: d == "nf:create")
    assert last(bot, cid)["text"] == "បានបង្កើតករណី #2។ តើប្រគល់ករណីនេះឥឡូវនេះទេ?"

    m = await bot.say(wg, chat, "/assign 2 pp-dp")
    assert bot.texts_since(m, cid) == [f"បានប្រគល់ករណី <b>#2</b> ទៅ {DP}។"]
    m = await press_data(bot, official, bot.card(DP_CHAT, 2), card_data("acc"))
    assert bot.answers_since(m) == ["បានទទួលយកករណី #2៖ ករណីនេះកំពុងដោះស្រាយ។"]


async def reminders_twenty_days_later(bot: Bot, official: JSON, supervisor: JSON) -> None:
    """At 09:00 twenty days later: reminders, escalations and the daily digests, then a snooze."""
    bot.clock.advance(days=20)
    m = bot.api.mark()
    assert await run_once(bot.services) > 0
    await bot.settle()
    to_official = bot.texts_since(m, OFFICIAL)
    assert any(t.startswith(f"⏰ #2 ({DP}) ហួសកាលកំណត់ 5 ថ្ងៃ៖ ស្នើសុំសំបុត្រកំណើតថ្មី") for t in to_official), to_official
    reminder = newest_with_button(bot, OFFICIAL, card_data("snz"))
    assert labels(reminder) == ["🔄 ប្ដូរស្ថានភាព", "😴 ពន្យារ 1 ថ្ងៃ", "🆘 ស្នើសុំជំនួយ"]
    to_supervisor = "\n".join(bot.texts_since(m, SUPERVISOR))
    # Both cases escalated in this run: one message, oldest first, a button per case.
    escalated = (f"⬆️ ករណីហួសកាលកំណត់ចំនួន 2 បញ្ជូនមកលោកអ្នកជាថ្នាក់លើ ចាស់ជាងគេមុន៖\n"
                 f"• <b>#2</b> · {DP} · ហួសកាលកំណត់ 5 ថ្ងៃ · ស្នើសុំសំបុត្រកំណើតថ្មី\n"
                 f"• <b>#1</b> · {DP} · ហួសកាលកំណត់ 13 ថ្ងៃ · មិនទាន់ផ្ទៀងផ្ទាត់ · ")
    assert escalated in to_supervisor
    assert "ចុចលេខករណី ដើម្បីបង្ហាញកាតករណីនៅទីនេះ។" in to_supervisor
    assert "📋 <b>របាយការណ៍សង្ខេប៖ រាជធានីភ្នំពេញ</b> · 22 វិច្ឆិកា 2026, 09:00" in to_supervisor
    to_wg = "\n".join(bot.texts_since(m, WG_CHAT))
    assert escalated in to_wg, to_wg  # the reminder to verify #1 is in its escalation
    assert "📋 <b>របាយការណ៍សង្ខេប៖ អង្គភាពទាំងអស់</b>" in to_wg

    await press_data(bot, official, reminder, card_data("snz"))
    prompt = last(bot, OFFICIAL)
    assert "ហេតុអ្វីត្រូវពន្យារការរំលឹកអំពីករណី #2 មួយថ្ងៃ?" in prompt["text"]
    m = await bot.reply_to_last(official, bot.private(official), "កំពុងរង់ចាំឯកសារពីសាលាខណ្ឌ")
    assert bot.texts_since(m, OFFICIAL) == ["✅ ករណី #2៖ គ្មានការរំលឹករហូតដល់ថ្ងៃស្អែកទេ។"]


async def digest_and_lists(bot: Bot, wg: JSON, official: JSON, supervisor: JSON) -> None:
    m = await bot.say(supervisor, bot.private(supervisor), "/digest")
    digest = bot.texts_since(m)[-1]
    for expected in ("📋 <b>របាយការណ៍សង្ខេប៖ រាជធានីភ្នំពេញ</b> · 22 វិច្ឆិកា 2026, 09:00",
                     "24 ម៉ោងចុងក្រោយ៖ ថ្មី 0 · បានដោះស្រាយ 0 · បានបិទ 0", "<b>ករណីមិនទាន់បិទ៖ 2</b>",
                     "• បានដោះស្រាយ — រង់ចាំការផ្ទៀងផ្ទាត់៖ 1", "<b>ហួសកាលកំណត់៖ 2</b>",
                     "ផ្ទេរចុះឡើង៖ 0", "<b>តាមអង្គភាព</b>"):
        assert expected in digest, (expected, digest)
    m = await bot.say(wg, bot.private(wg), "/case")  # a malformed command: the usage line too
    assert bot.texts_since(m) == ["សូមផ្ដល់លេខករណីមួយ។\nរបៀបប្រើ៖ <code>/case &lt;លេខ&gt;</code>"]
    for who, chat, command in ((wg, bot.private(wg), "/overdue"), (official, bot.dp_chat, "/mycases"),
                               (official, bot.dp_chat, "/help"), (wg, bot.private(wg), "/help"),
                               (wg, bot.private(wg), "/units")):
        m = await bot.say(who, chat, command)
        assert bot.texts_since(m), command


async def test_the_main_walk_runs_in_khmer_without_english(tmp_path: Path, clock: Clock) -> None:
    async with running_bot(tmp_path, clock, default_language="km", units=KM_UNITS,
                           categories=KM_CATEGORIES) as bot:
        wg, official, supervisor = await speak_khmer(bot)
        await create_first_case(bot, wg)
        await work_the_first_case(bot, wg, official)
        await show_the_history(bot, wg)
        await second_case_from_a_forward(bot, wg, official, clock)
        await reminders_twenty_days_later(bot, official, supervisor)
        await digest_and_lists(bot, wg, official, supervisor)

        said = everything_the_bot_said(bot.api)
        assert len(said) > 150
        found = leaks(said, english_fragments())
        assert not found, "English in the Khmer walk:\n" + "\n".join(f"{f!r} in {t!r}" for f, t in found)
        assert not [t for t in said if LATIN_MONTH.search(t)]
        assert sum("វិច្ឆិកា" in t for t in said) > 10


def test_a_grant_names_its_unit_in_the_readers_language() -> None:
    from bot.domain.people import Grant
    from bot.domain.rules import Role
    from bot.i18n import use_locale

    grant = Grant(1, 1003, Role.OFFICIAL, 4, "pp-dp", "Daun Penh", "ខណ្ឌដូនពេញ")
    with use_locale("km"):
        assert "ខណ្ឌដូនពេញ" in grant.label() and "Daun Penh" not in grant.label()
    with use_locale("en"):
        assert grant.label() == "official of Daun Penh"
