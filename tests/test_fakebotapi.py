"""Tests for the fake Bot API server, driven through python-telegram-bot's real HTTP path."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import html
import io
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, InvalidToken, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

try:  # works whether or not tests/ becomes a package
    from tests.fakebotapi import FakeBotAPI, UploadedFile, parse_html
except ImportError:  # pragma: no cover - depends on sys.path layout
    from fakebotapi import FakeBotAPI, UploadedFile, parse_html  # type: ignore[no-redef]

_PROXY_VARS = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy env vars; make sure 127.0.0.1 is always reached directly."""
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as b:
        yield b


@contextlib.asynccontextmanager
async def running_app(
    api: FakeBotAPI, *handlers: Any, error_handler: Any = None
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = (
        ApplicationBuilder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    for handler in handlers:
        app.add_handler(handler)
    if error_handler is not None:
        app.add_error_handler(error_handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


# -- the real PTB Application -------------------------------------------------------------------


async def test_application_command_and_button_roundtrip(api: FakeBotAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(
            "hi <b>x</b>",
            parse_mode="HTML",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("Go", callback_data="go:1")]]
            ),
        )

    async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("done")
        await query.edit_message_text(f"pressed <i>{query.data}</i>", parse_mode="HTML")

    started = time.monotonic()
    async with running_app(api, CommandHandler("start", start), CallbackQueryHandler(button)):
        assert api.calls_of("getMe")
        assert api.calls_of("deleteWebhook")

        alice = api.user(1001, "Alice", username="alice")
        chat = api.private_chat(alice)
        m = api.mark()
        upd = api.send_command(alice, chat, "/start")
        assert upd["update_id"] == 1
        assert upd["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]

        sent = await api.wait_for("sendMessage", after=m)
        assert sent.ok
        assert sent.params["chat_id"] == 1001
        assert sent.params["text"] == "hi <b>x</b>"
        assert sent.params["parse_mode"] == "HTML"
        assert sent.result["text"] == "hi x"
        assert sent.result["entities"] == [{"type": "bold", "offset": 3, "length": 1}]
        assert sent.result["from"]["id"] == api.bot_id
        assert sent.result["chat"] == {"id": 1001, "type": "private", "first_name": "Alice",
                                       "username": "alice"}
        # the user's /start got id 1 in this chat, so the reply gets 2
        assert sent.result["message_id"] == 2

        msg = api.last_message(1001)
        assert api.buttons(msg) == [("Go", "go:1")]

        m = api.mark()
        upd = api.press(alice, 1001, msg["message_id"], "go:1")
        assert upd["update_id"] == 2
        answer = await api.wait_for("answerCallbackQuery", after=m)
        assert answer.ok
        assert answer.params["callback_query_id"] == upd["callback_query"]["id"]
        assert answer.params["text"] == "done"
        edit = await api.wait_for("editMessageText", after=m)
        assert edit.ok, edit.error
        assert edit.params["message_id"] == msg["message_id"]

        edited = api.messages[(1001, msg["message_id"])]
        assert edited["text"] == "pressed go:1"
        assert "reply_markup" not in edited  # editing without markup drops the keyboard
        assert api.sent_texts(1001) == ["hi <b>x</b>", "pressed <i>go:1</i>"]

        await api.wait_updates_consumed(timeout=5)
        await api.wait_idle(quiet=0.2, timeout=5)

    assert time.monotonic() - started < 8
    polls = api.calls_of("getUpdates")
    assert polls and polls[-1].params.get("offset") == 3  # final poll confirms both updates


async def test_bad_requests_surface_in_the_bot(api: FakeBotAPI) -> None:
    errors: list[BaseException] = []

    async def long(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "x" * 4097)

    async def unescaped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.text is not None
        # the classic bug: user text interpolated into HTML without html.escape
        await update.message.reply_text(f"<b>You said</b>: {update.message.text}", parse_mode="HTML")

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert context.error is not None
        errors.append(context.error)

    async with running_app(
        api, CommandHandler("long", long), CommandHandler("echo", unescaped), error_handler=on_error
    ):
        bob = api.user(2002, "Bob")
        api.send_command(bob, api.private_chat(bob), "/long")
        failed = await api.wait_for("sendMessage", ok=False)
        assert failed.error is not None
        assert failed.error["error_code"] == 400
        assert failed.error["description"] == "Bad Request: message is too long"

        m = api.mark()
        api.send_command(bob, 2002, "/echo 1 < 2 & <script>")
        failed = await api.wait_for("sendMessage", after=m)
        assert not failed.ok
        assert failed.error is not None
        assert failed.error["description"].startswith("Bad Request: can't parse entities: ")

        for _ in range(100):
            if len(errors) == 2:
                break
            await asyncio.sleep(0.02)
    assert len(errors) == 2
    assert all(isinstance(e, BadRequest) for e in errors)
    assert "message is too long" in str(errors[0]).lower()
    assert "can't parse entities" in str(errors[1]).lower()
    assert api.messages == {}


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "1 < 2",
        "Tom & Jerry",
        "<b>unclosed",
        "<b><i>x</b></i>",
        "stray </b>",
        "<span>not a spoiler</span>",
        "<a href='x?a=1&b=2'>link</a>",
        "<br>",
    ],
)
async def test_html_validation_rejects(bot: Bot, text: str) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(1, text, parse_mode="HTML")


async def test_html_validation_accepts_escaped_text(api: FakeBotAPI, bot: Bot) -> None:
    user_text = "<script> & \"quotes\" 'apostrophes' -> 1 < 2"
    text = (
        f"<b>bold</b> <i>it</i> <u>u</u> <s>s</s> <tg-spoiler>sp</tg-spoiler> "
        f'<span class="tg-spoiler">sp2</span> <a href="https://e.org/?a=1&amp;b=2">l</a> '
        f"<code>c</code> <pre><code class=\"language-python\">p</code></pre> "
        f"<blockquote expandable>q</blockquote> {html.escape(user_text)} &#128512; &#x1F600;"
    )
    message = await bot.send_message(1, text, parse_mode="HTML")
    assert message.text is not None
    assert message.text.endswith(user_text + " 😀 😀")
    types = [e.type for e in message.entities]
    assert types == [
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "spoiler",
        "text_link",
        "code",
        "pre",
        "expandable_blockquote",
    ]
    link = message.entities[6]
    assert link.url == "https://e.org/?a=1&b=2"
    assert message.entities[8].language == "python"
    # bare '>' is fine for Telegram
    await bot.send_message(1, "a -> b", parse_mode="HTML")


def test_parse_html_counts_utf16() -> None:
    plain, entities = parse_html("😀 <b>ж😀</b>")
    assert plain == "😀 ж😀"
    assert entities == [{"type": "bold", "offset": 3, "length": 3}]
    with pytest.raises(ValueError, match='Unsupported start tag "script" at byte offset 5'):
        parse_html("😀 <script>")


async def test_length_limits(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(1, "x" * 4096)
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(1, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(1, "   ")
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_document(1, io.BytesIO(b"x"), filename="a.txt", caption="c" * 1025)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(1, "hi", reply_markup=markup)
    # 64 bytes are fine, even when multi-byte
    ok = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="ж" * 32)]])
    await bot.send_message(1, "hi", reply_markup=ok)
    assert api.count_429 == 0


async def test_edit_semantics(api: FakeBotAPI, bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    sent = await bot.send_message(-100500, "one", reply_markup=markup)
    assert sent.chat.type == "supergroup"
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("two", chat_id=-100500, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("one", chat_id=-100500, message_id=sent.message_id,
                                    reply_markup=markup)
    edited = await bot.edit_message_text(
        "two", chat_id=-100500, message_id=sent.message_id, reply_markup=markup
    )
    assert isinstance(edited, object) and api.buttons(api.last_message(-100500)) == [("A", "a")]
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(-100500, sent.message_id, reply_markup=markup)
    await bot.edit_message_reply_markup(-100500, sent.message_id, reply_markup=None)
    assert "reply_markup" not in api.last_message(-100500)
    with pytest.raises(BadRequest, match=r"(?i)no caption in the message"):
        await bot.edit_message_caption(-100500, sent.message_id, caption="c")
    assert await bot.delete_message(-100500, sent.message_id) is True
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(-100500, sent.message_id)


async def test_non_inline_markup_is_stored_but_not_returned(api: FakeBotAPI, bot: Bot) -> None:
    sent = await bot.send_message(9, "what is needed?", reply_markup=ForceReply(selective=True))
    assert sent.reply_markup is None  # Telegram only echoes inline keyboards
    assert api.last_message(9)["reply_markup"] == {"force_reply": True, "selective": True}
    kb = ReplyKeyboardMarkup([["Yes", "No"]], one_time_keyboard=True)
    await bot.send_message(9, "choose", reply_markup=kb)
    assert api.last_message(9)["reply_markup"]["keyboard"] == [
        [{"text": "Yes"}, {"text": "No"}]
    ]
    frank = api.user(9, "Frank")
    upd = api.send_message(frank, 9, "Yes", reply_to_message_id=sent.message_id)
    assert "reply_markup" not in upd["message"]["reply_to_message"]


async def test_string_params_are_not_json_decoded(api: FakeBotAPI, bot: Bot) -> None:
    for text in ("42", "true", "null", '{"a": 1}', "[1]"):
        message = await bot.send_message(7, text)
        assert message.text == text
    assert api.sent_texts(7) == ["42", "true", "null", '{"a": 1}', "[1]"]


# -- files -----------------------------------------------------------------------------------------


async def test_multipart_upload_and_download(api: FakeBotAPI, bot: Bot) -> None:
    payload = bytes(range(256)) * 4 + b"\r\n--boundary-lookalike\r\n\n\r"
    message = await bot.send_document(
        1001,
        io.BytesIO(payload),
        filename="отчёт \"Q1\".pdf",
        caption="<i>report</i> 42",
        parse_mode="HTML",
    )
    call = api.calls_of("sendDocument")[-1]
    upload = call.params["document"]
    assert isinstance(upload, UploadedFile)
    assert upload.content == payload
    assert upload.filename == "отчёт \"Q1\".pdf"
    assert upload.content_type == "application/pdf"
    assert call.params["chat_id"] == 1001
    assert call.params["caption"] == "<i>report</i> 42"
    assert message.caption == "report 42"
    assert message.document is not None
    assert message.document.file_name == "отчёт \"Q1\".pdf"

    tg_file = await bot.get_file(message.document.file_id)
    assert tg_file.file_path is not None
    assert tg_file.file_path.startswith(api.base_file_url + api.token + "/")
    assert bytes(await tg_file.download_as_bytearray()) == payload

    # a document the *user* sent can be fetched as well
    carol = api.user(3003, "Carol")
    upd = api.send_document(carol, 3003, file_name="scan.pdf", content=b"%PDF-1.7 scan")
    user_file = await bot.get_file(upd["message"]["document"]["file_id"])
    assert bytes(await user_file.download_as_bytearray()) == b"%PDF-1.7 scan"

    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")


async def test_media_group_with_attach_uris(api: FakeBotAPI, bot: Bot) -> None:
    messages = await bot.send_media_group(
        -42,
        [
            InputMediaPhoto(io.BytesIO(b"img-1"), caption="<b>first</b>", parse_mode="HTML"),
            InputMediaPhoto(io.BytesIO(b"img-2")),
        ],
    )
    assert len(messages) == 2
    assert messages[0].media_group_id == messages[1].media_group_id is not None
    assert messages[0].caption == "first"
    assert [m.message_id for m in messages] == [1, 2]
    call = api.calls_of("sendMediaGroup")[-1]
    assert sorted(f.content for f in call.files.values()) == [b"img-1", b"img-2"]
    assert all(item["media"].startswith("attach://") for item in call.params["media"])
    again = await bot.send_photo(-42, messages[0].photo[-1].file_id)
    assert again.photo[-1].file_id == messages[0].photo[-1].file_id


# -- protocol --------------------------------------------------------------------------------------


async def test_wrong_token_is_unauthorized(api: FakeBotAPI) -> None:
    wrong = Bot("999:WRONG", base_url=api.base_url, base_file_url=api.base_file_url)
    try:
        with pytest.raises(InvalidToken):
            await wrong.initialize()
    finally:
        await wrong.shutdown()
    async with httpx.AsyncClient(trust_env=False) as client:
        res = await client.post(f"{api.base_url}999:WRONG/getMe")
    assert res.status_code == 401
    assert res.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert api.calls == []


async def test_rate_limit_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # RetryAfter.retry_after as timedelta, no warning
    with FakeBotAPI(rate_limits=True) as api:
        async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
            await bot.send_message(1, "first")
            with pytest.raises(RetryAfter) as info:
                await bot.send_message(1, "second")
            assert info.value.retry_after == dt.timedelta(seconds=1)
            await bot.send_message(2, "another chat is fine")
            await bot.send_chat_action(1, "typing")  # not a message
            for i in range(20):
                await bot.send_message(-100, f"group {i}")
            with pytest.raises(RetryAfter):
                await bot.send_message(-100, "21st within a minute")
            failed = api.calls_of("sendMessage")[-1]
            assert failed.error is not None
            assert failed.error["error_code"] == 429
            assert failed.error["parameters"]["retry_after"] >= 1
    assert api.count_429 == 2


async def test_get_updates_long_poll_offset_and_limit(api: FakeBotAPI) -> None:
    url = f"{api.base_url}{api.token}/getUpdates"
    dave = api.user(4004, "Dave")
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        api.send_message(dave, 4004, "one")
        api.send_message(dave, 4004, "two")
        res = (await client.post(url, data={"timeout": "0"})).json()
        assert [u["update_id"] for u in res["result"]] == [1, 2]
        res = (await client.post(url, data={"offset": "2", "limit": "1"})).json()
        assert [u["message"]["text"] for u in res["result"]] == ["two"]
        res = (await client.post(url, data={"offset": "3", "timeout": "0"})).json()
        assert res == {"ok": True, "result": []}

        started = time.monotonic()
        poll = asyncio.create_task(client.post(url, data={"offset": "3", "timeout": "5"}))
        await asyncio.sleep(0.2)
        assert not poll.done()
        api.send_message(dave, 4004, "three")
        res = (await poll).json()
        assert time.monotonic() - started < 2
        assert [u["update_id"] for u in res["result"]] == [3]
        await api.wait_updates_consumed(timeout=2)

        started = time.monotonic()
        res = (await client.post(url, data={"offset": "4", "timeout": "1"})).json()
        assert res["result"] == []
        assert 0.8 < time.monotonic() - started < 3

        # JSON bodies work too, and unknown methods just answer True
        res = (await client.post(f"{api.base_url}{api.token}/setChatTitle",
                                 json={"chat_id": -1, "title": "t"})).json()
        assert res == {"ok": True, "result": True}
        assert api.calls_of("setChatTitle")[0].params == {"chat_id": -1, "title": "t"}


async def test_ids_replies_copy_and_forward(api: FakeBotAPI, bot: Bot) -> None:
    erin = api.user(5005, "Erin", username="erin")
    group = api.group_chat(-100777, "Working group")
    first = api.send_message(erin, 5005, "my request")["message"]
    assert first["message_id"] == 1
    reply = await bot.send_message(5005, "got it", reply_to_message_id=first["message_id"])
    assert reply.message_id == 2
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "my request"
    second = api.send_message(erin, 5005, "thanks", reply_to_message_id=reply.message_id)
    assert second["message"]["message_id"] == 3
    assert second["message"]["reply_to_message"]["text"] == "got it"

    copied = await bot.copy_message(group["id"], 5005, first["message_id"])
    assert api.messages[(group["id"], copied.message_id)]["text"] == "my request"
    assert api.last_message(group["id"])["chat"]["title"] == "Working group"
    fwd = await bot.forward_message(group["id"], 5005, first["message_id"])
    assert fwd.forward_origin is not None
    assert fwd.forward_origin.type == "user"
    with pytest.raises(BadRequest, match=r"(?i)message to copy not found"):
        await bot.copy_message(group["id"], 5005, 999)

    fwd_upd = api.forward_message(erin, 5005, "forwarded text", origin_date=1_700_000_000,
                                  origin_sender_name="Someone")
    origin = fwd_upd["message"]["forward_origin"]
    assert origin == {"type": "hidden_user", "date": 1_700_000_000, "sender_user_name": "Someone"}
    photo = api.send_photo(erin, group, caption="pic")["message"]
    assert len(photo["photo"]) == 2
    assert len({p["file_id"] for p in photo["photo"]}) == 2

    member = await bot.get_chat_member(group["id"], api.bot_id)
    assert member.status == "administrator"
    chat = await bot.get_chat(group["id"])
    assert chat.title == "Working group"
    await bot.set_my_commands([("start", "Start"), ("help", "Help")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    with pytest.raises(KeyError):
        api.press(erin, 5005, 999, "x")


async def test_wait_for_timeout_dumps_calls(api: FakeBotAPI, bot: Bot) -> None:
    await bot.send_message(1, "something else")
    with pytest.raises(AssertionError) as info:
        await api.wait_for("editMessageText", timeout=0.2)
    text = str(info.value)
    assert "no editMessageText call" in text
    assert "sendMessage" in text and "something else" in text
