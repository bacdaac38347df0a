"""Bad input at scale, through Telegram (the fake Bot API, whose HTML parser refuses what
Telegram's refuses): every command with arbitrary and with hostile text after it, every button
prefix the bot registers with arbitrary and with forged data. Nothing ever reaches the error
handler; every reply is valid Telegram HTML; hostile input gets exactly one short answer and
changes nothing in the database.

The property tests (hypothesis) share one running bot across their examples: an example takes a
few milliseconds, so a few hundred of them cost a few seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.errors import Invalid
from bot.domain.reports import parse_period
from bot.domain.rules import Role, keyword
from bot.inputs import KHMER_DIGITS, parse_case_number, parse_date, parse_person
from tests.conftest import ADMIN, DP_CHAT, PEOPLE, WG, Clock, config_dict
from tests.fakebotapi import Call, parse_html
from tests.harness import Bot, running_bot
from tests.test_e2e_inputs import make_case


def shared_bot(examples: int) -> settings:
    """The examples of a property share the test's running bot (the fixture): on purpose."""
    return settings(max_examples=examples,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# What the database holds; who was seen last, refusals noted and messages queued may change.
STATE_TABLES = ("units", "categories", "chat_bindings", "settings_kv", "cases", "attachments", "events",
                "grants", "invitations", "case_contacts", "digest_mute", "chat_languages", "data_access")
CASES = {1, 2}  # #1 assigned to Daun Penh, #2 new
UNIT_KEYS = {"moi", "pp", "pp-dp", "pp-ck", "sr", "mlm", "workgroup", "-"}
USERNAMES = {"admin", "sophea_wg", *(p[2] for p in PEOPLE)}
IDS = {ADMIN, WG, *(p[0] for p in PEOPLE)}
ROLES = {r.value for r in Role}

OTHER_DIGITS = "²³¹①٠١٢٣٤٥٦٧٨٩۴۵०१२৩৪０１２๑๒𝟚"
KHMER = str.maketrans("0123456789", KHMER_DIGITS)


def word(text: str) -> str:
    """One argument: commands split on whitespace."""
    return "".join(text.split())


HOSTILE = st.one_of(
    st.text(st.sampled_from(OTHER_DIGITS), min_size=1, max_size=12),
    st.integers(10**9, 10**60).map(str),
    st.integers(10**9, 10**40).map(lambda n: str(n).translate(KHMER)),
    st.sampled_from(["<b>", "<i>x", "</b>", "<5", "&", "&amp", "&lt;", "a<b", "<a href='x'>", "\"'",
                     "<b>x</b>", "#", "#²", "-1", "0", "0000", "9999", "9999-12", "9999-12-31", "២០២៦-១៣"]),
    st.integers(50, 4000).map(lambda n: "<" * n),
    st.text(min_size=1, max_size=20).map(word).filter(bool),
)
WORDS = st.lists(st.one_of(HOSTILE, st.sampled_from(["1", "2", "pp-dp", "mlm", "official", "@dara", "letter",
                                                      "in_progress", "confirmed", "2026-04", "nopd"])),
                 max_size=3).map(" ".join)


def not_case(t: str) -> bool:
    return parse_case_number(t) not in CASES


def not_unit(t: str) -> bool:
    return t.lower() not in UNIT_KEYS


def not_person(t: str) -> bool:
    who = parse_person(t)
    return who not in IDS and (not isinstance(who, str) or who.lower() not in USERNAMES)


def not_period(t: str) -> bool:
    try:
        parse_period(t, ZoneInfo("Asia/Phnom_Penh"))
    except Invalid:
        return True
    return False


def hostile(check: Callable[[str], bool] | None = None) -> st.SearchStrategy[str]:
    return HOSTILE if check is None else HOSTILE.filter(check)


CASE_COMMANDS = ["assign", "status", "note", "resolve", "reopen", "answer", "case", "forward", "ack",
                 "decline", "outcome", "verify", "merge", "due", "erase"]
# Each is refused, whatever the words drawn: one argument is wrong on purpose.
HOSTILE_COMMANDS = st.one_of(
    st.builds(lambda c, a, rest: f"/{c} {a} {rest}", st.sampled_from(CASE_COMMANDS), hostile(not_case), WORDS),
    st.builds("/assign 1 {} {}".format, hostile(not_unit), WORDS),
    st.builds("/assign 2 pp-dp {}".format, hostile(not_person)),
    st.builds("/status 1 {} {}".format, hostile(lambda t: keyword(t) not in ("in_progress", "waiting_info")),
              WORDS),
    st.builds("/forward 1 {} letter because".format, hostile(not_unit)),
    st.builds("/verify 1 {} {}".format,
              hostile(lambda t: keyword(t) not in ("confirmed", "unreachable", "disputed")), WORDS),
    st.builds("/merge 1 {}".format, hostile(not_case)),
    st.builds("/due 1 {}".format, hostile(lambda t: parse_date(t) is None)),
    st.builds("/invite {} official".format, hostile(not_unit)),
    st.builds("/invite pp-dp {}".format, hostile(lambda t: t.lower() not in ROLES)),
    st.builds("/revoke {} {}".format, hostile(not_person), WORDS),
    st.builds("/revoke @dara {}".format, hostile(not_unit)),
    st.builds("/revoke @dara pp-dp {}".format, hostile(lambda t: t.lower() not in ROLES)),
    st.builds("/people {}".format, hostile(not_unit)),
    st.builds("/bindchat {}".format, hostile()),
    st.builds("/lang {}".format, hostile(lambda t: t.lower() not in ("km", "en"))),
    st.builds("/digest {}".format, hostile(lambda t: t.lower() not in ("on", "off"))),
    st.builds("/report {}".format, hostile(not_period)),
    st.builds("/export {}".format, hostile(lambda t: t != "nopd" and not_period(t))),
    st.builds("/accesslog {} {}".format, hostile(not_case), WORDS),
    st.builds("/start {}".format, hostile()),
)
ALL_COMMANDS = [*CASE_COMMANDS, "invite", "invites", "people", "revoke", "whoami", "refusals", "bindchat",
                "units", "lang", "digest", "report", "export", "stats", "start", "help", "mycases",
                "overdue", "bouncing", "cancel", "accesslog", "search"]
ANY_TEXT = st.one_of(st.text(max_size=300), WORDS)

# Every callback data prefix the bot registers (the intake's and the prompts' answer only in
# their conversation; anywhere else the press is an old button), and none.
PREFIXES = ["lang:", "c:", "fp:", "as:", "ap:", "ans:", "fw:", "mc:", "od:", "iw:", "al:", "imp:", "imx:", "ns:",
            "nc:", "np:", "nu:", "nk:", "nd:", "nf:", "ne:", "nm:", "fwd:", "ev:", "fc:", "sc:", "er:", ""]
HOSTILE_FIELD = st.one_of(
    st.text(st.sampled_from(OTHER_DIGITS), min_size=1, max_size=4),
    st.integers(2**31, 10**15).map(str),
    st.sampled_from(["", "-1", "<b>", "&", "x", "១", "1.0", " 1"]),
)
FIELD = st.one_of(st.integers(0, 3).map(str), st.sampled_from(["acc", "res", "upd", "rsm", "ack", "km", "skip"]))


def fits_a_button(data: str) -> bool:
    return len(data.encode()) <= 64  # Telegram's limit on callback data


@st.composite
def forged_data(draw: st.DrawFn) -> str:
    """Button data with at least one field no button of the bot carries."""
    fields = draw(st.lists(FIELD, max_size=3))
    fields.insert(draw(st.integers(0, len(fields))), draw(HOSTILE_FIELD))
    data = draw(st.sampled_from(PREFIXES)) + ":".join(fields)
    if data.startswith(("imp:", "imx:")):
        data += "$"  # never an import token
    return data


ANY_DATA = st.builds(lambda p, s: p + s, st.sampled_from(PREFIXES), st.text(max_size=30)).filter(fits_a_button)


async def state(bot: Bot) -> tuple[object, ...]:
    db = bot.services.db
    return tuple([sorted(map(tuple, await db.all(f"SELECT * FROM {t}")), key=repr) for t in STATE_TABLES])


def no_errors(bot: Bot, calls: list[Call], caplog: pytest.LogCaptureFixture) -> None:
    """Nothing reached the error handler, and Telegram refused nothing (a second press that
    changes nothing is "message is not modified", which the bot expects)."""
    assert not [r for r in caplog.records if r.name == "bot.errors"], [r.getMessage() for r in caplog.records]
    failed = [c.short() for c in calls if not c.ok and "not modified" not in str(c.error)]
    assert not failed, failed
    for c in calls:
        if "text" in c.params and c.method in ("sendMessage", "editMessageText"):
            parse_html(str(c.params["text"]))


@pytest.fixture
async def world(bot: Bot) -> AsyncIterator[Bot]:
    assert await make_case(bot) == 1
    assert await make_case(bot, unit=None) == 2
    yield bot


async def refused_once(bot: Bot, text: str, caplog: pytest.LogCaptureFixture) -> str:
    """Send ``text`` as the admin, in private: one short answer, nothing changed."""
    chat = bot.private(bot.admin)
    before = await state(bot)
    caplog.clear()
    m = await bot.say(bot.admin, chat, text)
    calls = bot.api.calls[m:]
    no_errors(bot, calls, caplog)
    sent = [c for c in calls if c.method.startswith("send")]
    assert len(sent) == 1 and sent[0].method == "sendMessage", (text[:80], [c.short() for c in sent])
    assert int(sent[0].params["chat_id"]) == chat["id"]
    reply = str(sent[0].params["text"])
    plain = parse_html(reply)[0]
    assert len(plain) < 400 and plain.count("\n") <= 1, (text[:80], reply)  # a sentence and the usage
    assert "went wrong" not in plain
    assert await state(bot) == before, text[:80]
    return plain


# --- what the issue found by hand --------------------------------------------------------------

FOUND: list[tuple[str, str]] = [
    ("/assign 1 pp-dp ²", "“²” is not a @username or a Telegram id.\nUsage: /assign <case> <unit-key> [@official]"),
    ("/revoke ²", "“²” is not a @username or a Telegram id.\nUsage: /revoke <@person|id> [unit-key] [role]"),
    ("/revoke 99999999999999999999", "is not a @username or a Telegram id.\nUsage:"),
    ("/report 9999", "“9999” is out of range: give a year from 1900 to 2999.\nUsage: /report"),
    ("/report 0000", "“0000” is out of range"),
    ("/report 9999-12", "“9999-12” is out of range"),
    ("/export 9999", "“9999” is out of range: give a year from 1900 to 2999.\nUsage: /export"),
    ("/assign 1 <b>x", "There is no unit with the key “<b>x”. /units lists them."),
    ("/people <b>", "There is no unit with the key “<b>”."),
    ("/invite <b> official", "There is no unit with the key “<b>”."),
    ("/forward 1 <i> x y", "There is no unit with the key “<i>”."),
    ("/assign 1 pp-dp <b>", "“<b>” is not a @username or a Telegram id."),
    ("/revoke <b>", "“<b>” is not a @username or a Telegram id."),
    ("/report <b>", "“<b>” is not a period like 2026-04, 2026-Q2 or 2026.\nUsage: /report"),
    ("/export <i>", "“<i>” is not a period like 2026-04, 2026-Q2 or 2026.\nUsage: /export"),
    ("/invite pp-dp <b>", "“<b>” is not a role"),
    ("/revoke @dara pp-dp <i>", "“<i>” is not a role"),
    ("/case ٣", "“٣” is not a case number.\nUsage: /case <number>"),  # Arabic-Indic three
    ("/case １", "“１” is not a case number."),  # fullwidth one
    ("/merge 1 ²", "“²” is not a case number."),
    ("/due 1 9999-12-31", "“9999-12-31” is not a date like 2026-04-30.\nUsage: /due"),
    ("/due 1 ٢٠٢٦-١٢-٣١", "is not a date like 2026-04-30."),
    ("/assign 1 " + "x" * 5000, "There is no unit with the key “" + "x" * 39 + "…”."),
    ("/assign 1 pp-dp " + "<" * 3000, "“" + "<" * 39 + "…” is not a @username or a Telegram id."),
]
FOUND_BUTTONS = ["c:1:²:rsm", "c:²:1:ack", "sc:²", "sc:99999999999", "sc:1:1", "nm:²", "al:²:0", "al:1:²", "as:²:1", "ap:²:0:0", "fw:²:6", "ans:²", "fp:²", "iw:²", "mc:²", "od:²", "c:²:1:acc",
                 "c:1:²:res", "c:٣:1:acc", "np:²:0", "as:99999999999:1", "ap:1:0:99999999999",
                 "fw:1:99999999999999999999", "lang:xx"]


async def test_what_the_issue_found_gets_one_sentence_and_changes_nothing(
        world: Bot, caplog: pytest.LogCaptureFixture) -> None:
    for text, expected in FOUND:
        assert expected in await refused_once(world, text, caplog), text[:60]


async def test_forged_buttons_found_by_hand(world: Bot, caplog: pytest.LogCaptureFixture) -> None:
    chat = world.private(world.admin)
    await world.say(world.admin, chat, "/help")
    message = world.last_bot_message(chat["id"])
    for data in FOUND_BUTTONS:
        before = await state(world)
        m = await world.press(world.admin, chat["id"], message["message_id"], data)
        no_errors(world, world.api.calls[m:], caplog)
        assert world.answers_since(m) == ["That button is not valid any more."], data
        assert world.texts_since(m) == [] and await state(world) == before, data


async def test_khmer_digits_work_as_ascii_ones(world: Bot) -> None:
    chat = world.private(world.admin)
    m = await world.say(world.admin, chat, "/case ១")
    assert world.texts_since(m)[0].startswith("<b>#1</b>")
    m = await world.say(world.admin, chat, "/case #១")
    assert world.texts_since(m)[0].startswith("<b>#1</b>")
    m = await world.say(world.admin, chat, "/report ២០២៦-q៤")  # a quarter: no charts to draw
    assert world.texts_since(m)[0].startswith("<b>Report for Q4 2026</b>")
    m = await world.say(world.admin, chat, "/due ១ ២០២៦-១២-៣១")
    assert "New deadline for #1: 31 Dec 2026." in " ".join(world.texts_since(m))


async def test_stats_with_small_counts_is_valid_html(world: Bot) -> None:
    """Two cases: every count is under 5 and shown as "<5", which HTML writes "&lt;5"."""
    m = await world.say(world.stranger, world.private(world.stranger), "/stats")
    [call] = world.sent_since(m)
    assert call.ok and "received &lt;5" in call.params["text"]
    assert "received <5" in world.api.messages[(call.result["chat"]["id"], call.result["message_id"])]["text"]


async def test_names_in_refusals_are_escaped_and_toasts_are_plain_text(tmp_path: Path, clock: Clock) -> None:
    """Unit names with "&" and "<" (the config's, and so the admin's to choose): escaped in a
    refusal sent as a message; as they are in a toast, which Telegram shows without parsing."""
    units = [dict(u) for u in config_dict(tmp_path / "x.sqlite3")["units"]]
    for u in units:
        if u["key"] in ("pp-ck", "mlm"):
            u["name"] = f"{u['name']} & <{u['key'].upper()}>"
    async with running_bot(tmp_path, clock, units=units) as bot:
        await make_case(bot, unit=None)
        chat = bot.private(bot.admin)
        m = await bot.say(bot.admin, chat, "/assign 1 pp-ck")
        [text] = bot.texts_since(m)
        assert text.startswith("Chamkar Mon &amp; &lt;PP-CK&gt; has no bound chat")
        m = await bot.say(bot.admin, chat, "/assign 1 mlm")
        assert bot.texts_since(m) == [
            "Ministry of Land &amp; &lt;MLM&gt; is another institution; cases are forwarded there, not assigned."]
        mlm = (await bot.services.units.by_key("mlm")).id
        m = await bot.press(bot.admin, chat["id"], bot.last_bot_message(chat["id"])["message_id"], f"as:1:{mlm}")
        assert bot.answers_since(m) == [
            "Ministry of Land & <MLM> is another institution; cases are forwarded there, not assigned."]
        assert (await bot.services.cases.get(1)).unit_id is None


# --- properties ----------------------------------------------------------------------------------

@shared_bot(100)
@given(text=HOSTILE_COMMANDS)
async def test_hostile_commands_get_one_short_answer_and_change_nothing(
        world: Bot, caplog: pytest.LogCaptureFixture, text: str) -> None:
    await refused_once(world, text, caplog)


@shared_bot(100)
@given(command=st.sampled_from(ALL_COMMANDS), rest=ANY_TEXT)
async def test_any_text_after_any_command_is_answered_in_valid_html(
        world: Bot, caplog: pytest.LogCaptureFixture, command: str, rest: str) -> None:
    chat = world.private(world.admin)
    caplog.clear()
    m = await world.say(world.admin, chat, f"/{command} {rest}"[:4096])
    calls = world.api.calls[m:]
    no_errors(world, calls, caplog)
    assert [c for c in calls if c.method in ("sendMessage", "sendDocument")
            and int(c.params["chat_id"]) == chat["id"]], f"/{command} {rest}"[:80]


@shared_bot(100)
@given(data=forged_data().filter(fits_a_button))
async def test_forged_button_data_gets_one_toast_and_changes_nothing(
        world: Bot, caplog: pytest.LogCaptureFixture, data: str) -> None:
    chat = world.private(world.admin)
    await world.say(world.admin, chat, "/help")
    message = world.last_bot_message(chat["id"])
    before = await state(world)
    caplog.clear()
    m = await world.press(world.admin, chat["id"], message["message_id"], data)
    calls = world.api.calls[m:]
    no_errors(world, calls, caplog)
    assert len([c for c in calls if c.method == "answerCallbackQuery"]) == 1, data
    assert not [c for c in calls if c.ok and c.method not in ("answerCallbackQuery", "getUpdates")], data
    assert await state(world) == before, data


@shared_bot(100)
@given(data=ANY_DATA)
async def test_any_button_data_is_answered_once(world: Bot, caplog: pytest.LogCaptureFixture, data: str) -> None:
    chat = world.private(world.admin)
    await world.say(world.admin, chat, "/help")
    message = world.last_bot_message(chat["id"])
    caplog.clear()
    m = await world.press(world.admin, chat["id"], message["message_id"], data)
    calls = world.api.calls[m:]
    no_errors(world, calls, caplog)
    assert len([c for c in calls if c.method == "answerCallbackQuery"]) == 1, data


async def test_hostile_inputs_in_a_unit_chat(world: Bot, caplog: pytest.LogCaptureFixture) -> None:
    """The same through an official in the unit's group chat (their language, their rights)."""
    for text in ("/status 1 ²", "/note ² x", "/resolve ٣ done", "/case <b>", "/mycases <b>", "/digest <i>",
                 "/lang <b>", "/people <b>", "/revoke <b>", "/search <b>", "/search ²"):
        before = await state(world)
        caplog.clear()
        m = await world.say(world.official, world.dp_chat, text)
        calls = world.api.calls[m:]
        no_errors(world, calls, caplog)
        sent = [c for c in calls if c.method == "sendMessage"]
        assert len(sent) == 1 and int(sent[0].params["chat_id"]) == DP_CHAT, (text, sent)
        assert await state(world) == before, text


# The intake's buttons answer only in their step of /new: each example walks there first.
INTAKE_STEPS = {"ns:": [], "nc:": ["Phone"], "np:": ["Phone", "Land dispute"], "nu:": ["Phone", "Land dispute"]}


@shared_bot(50)
@given(prefix=st.sampled_from(list(INTAKE_STEPS)),
       suffix=st.one_of(st.text(max_size=20), st.lists(HOSTILE_FIELD | FIELD, max_size=3).map(":".join)))
async def test_any_data_in_the_intake_is_answered_once_and_saves_nothing(
        world: Bot, caplog: pytest.LogCaptureFixture, prefix: str, suffix: str) -> None:
    chat = world.private(world.wg)
    await world.say(world.wg, chat, "/new")
    for label in INTAKE_STEPS[prefix]:
        await world.press_button(world.wg, world.last_bot_message(chat["id"]), label)
    message = world.last_bot_message(chat["id"])
    before = await state(world)
    caplog.clear()
    m = await world.press(world.wg, chat["id"], message["message_id"], (prefix + suffix)[:64])
    calls = world.api.calls[m:]
    no_errors(world, calls, caplog)
    assert len([c for c in calls if c.method == "answerCallbackQuery"]) == 1, prefix + suffix
    assert await state(world) == before


async def test_forged_data_on_the_confirm_screen(world: Bot, caplog: pytest.LogCaptureFixture) -> None:
    chat = world.private(world.wg)
    await world.say(world.wg, chat, "/new")
    for label in ("Phone", "Land dispute", "Siem Reap"):
        await world.press_button(world.wg, world.last_bot_message(chat["id"]), label)
    for answer in ("Road flooded", "Chan Lina", "012", "Water everywhere"):
        await world.say(world.wg, chat, answer)
    await world.press_button(world.wg, world.last_bot_message(chat["id"]), "Done")
    confirm = world.last_bot_message(chat["id"])
    before = await state(world)
    for data in ("nf:", "nf:²", "nf:create:1", "nf:<b>", "ne:summary", "nd:done", "ev:skip", "fc:letter",
                 "nm:", "nm:²", "nm:1:1", "nm:99999999999"):
        caplog.clear()
        m = await world.press(world.wg, chat["id"], confirm["message_id"], data)
        no_errors(world, world.api.calls[m:], caplog)
        assert world.answers_since(m) == ["That button is not valid any more."], data
    assert await state(world) == before
    await world.press_button(world.wg, confirm, "Create")  # the draft survived them all
    assert (await world.services.cases.get(3)).summary == "Road flooded"


@shared_bot(40)
@given(text=ANY_TEXT.filter(lambda t: bool(t.strip()) and not t.startswith("/")))
async def test_any_reply_to_a_card_is_a_note_in_valid_html(
        world: Bot, caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Whatever an official writes in reply to a card is a note on its case, word for word, and
    every message that follows (the working group's notice) is valid HTML."""
    card = world.card(DP_CHAT, 1)
    caplog.clear()
    m = await world.say(world.official, world.dp_chat, text, reply_to=card["message_id"])
    no_errors(world, world.api.calls[m:], caplog)
    last = (await world.services.cases.history(1))[-1]
    assert (last.action, last.note) == ("note", text.strip())
