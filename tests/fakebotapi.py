"""A fake Telegram Bot API server for end-to-end tests of the bot.

It speaks the real HTTP protocol on 127.0.0.1, so python-telegram-bot's own ``HTTPXRequest``
path is exercised::

    with FakeBotAPI() as api:
        app = (
            ApplicationBuilder()
            .token(api.token)
            .base_url(api.base_url)
            .base_file_url(api.base_file_url)
            .build()
        )
        ...
        alice = api.user(1001, "Alice")
        m = api.mark()
        api.send_command(alice, api.private_chat(alice), "/start")
        call = await api.wait_for("sendMessage", after=m)

How PTB talks to the API (PTB 22, see ``telegram/request/_requestdata.py``): every request is
a ``POST {base_url}{token}/{method}``.  Parameters travel as ``application/x-www-form-urlencoded``
or, as soon as one file is uploaded, as ``multipart/form-data``.  A parameter whose value is a
``str`` is sent *as is*; anything else (ints, bools, lists, dicts such as ``reply_markup``) is
``json.dumps``-ed.  Hence this server decodes each value with ``json.loads`` and falls back to the
raw string, except for parameters that are always strings (``text``, ``caption`` ...), which are
kept raw so that a message text such as ``"42"`` or ``"null"`` is not turned into a number.

Everything is stdlib only.  The server runs in a daemon thread; all state is guarded by one
re-entrant lock, so the injection helpers can be called from the asyncio test code directly.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import copy
import email.message
import email.parser
import email.policy
import email.utils
import http.client
import itertools
import json
import math
import re
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

JSON = dict[str, Any]

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"

# Parameters that are always strings in the Bot API.  PTB sends str values un-encoded, so a
# json.loads() on them would corrupt texts like "42", "true" or '{"a": 1}'.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "parse_mode",
        "callback_query_id",
        "inline_message_id",
        "business_connection_id",
        "url",
        "file_id",
        "description",
        "short_description",
        "name",
        "title",
        "question",
        "explanation",
        "first_name",
        "last_name",
        "phone_number",
        "vcard",
        "address",
        "emoji",
        "custom_title",
        "secret_token",
        "ip_address",
        "language_code",
        "performer",
        "quote",
        "photo",
        "document",
        "video",
        "audio",
        "animation",
        "voice",
        "video_note",
        "sticker",
        "thumbnail",
        "media_group_id",
        "message_effect_id",
        "game_short_name",
        "payload",
        "provider_token",
        "currency",
        "invite_link",
    }
)

_RATE_EXEMPT = frozenset({"sendChatAction"})
_RATE_EXTRA = frozenset({"copyMessage", "forwardMessage"})

# Content fields carried over by copyMessage / forwardMessage.
_CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    "photo",
    "document",
    "video",
    "audio",
    "voice",
    "animation",
    "video_note",
    "sticker",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    "contact",
    "location",
    "venue",
    "poll",
    "dice",
)

_BUTTON_ACTIONS = frozenset(
    {
        "callback_data",
        "url",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)

_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")

# json.dumps(obj, ensure_ascii=False) builds a new JSONEncoder on every call.
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)

# Values that copy.deepcopy returns as they are.
_ATOMIC: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def _copy_json(obj: Any) -> Any:
    """``copy.deepcopy`` for JSON-shaped data (plain dicts and lists of str/int/float/bool/None).

    Every object the fake stores or hands out is copied on the way in and out (so that neither
    side can change the other's), and deepcopy's generic machinery (memo, dispatch, keep-alive)
    made copying most of the fake's CPU per call; this is several times faster.  Anything else
    (tuples, dict/list subclasses, UploadedFile ...) goes to copy.deepcopy.  Unlike deepcopy it
    does not keep an object that occurs twice shared in the copy, nor survive a cycle: JSON has
    neither, and what is copied here is only ever serialized or compared.
    """
    cls = type(obj)
    if cls is dict:
        return {k: v if type(v) in _ATOMIC else _copy_json(v) for k, v in obj.items()}
    if cls is list:
        return [v if type(v) in _ATOMIC else _copy_json(v) for v in obj]
    if cls in _ATOMIC:
        return obj
    return copy.deepcopy(obj)


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass
class UploadedFile:
    """A file part of a multipart request."""

    field: str
    filename: str | None
    content_type: str
    content: bytes

    def __repr__(self) -> str:
        return (
            f"UploadedFile(field={self.field!r}, filename={self.filename!r}, "
            f"content_type={self.content_type!r}, size={len(self.content)})"
        )


@dataclass
class Call:
    """One request the bot made.  ``result`` is None when the call failed (see ``error``)."""

    method: str
    params: dict[str, Any]
    result: Any
    at: float
    error: JSON | None = None
    files: dict[str, UploadedFile] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def short(self, limit: int = 300) -> str:
        params = json.dumps(self.params, ensure_ascii=False, default=repr)
        if len(params) > limit:
            params = params[: limit - 3] + "..."
        if self.error is None:
            outcome = "ok"
        else:
            outcome = f"ERROR {self.error.get('error_code')} {self.error.get('description')}"
        return f"{self.method}({params}) -> {outcome}"


class ApiError(Exception):
    """Raised by method implementations; becomes a ``{"ok": false, ...}`` answer."""

    def __init__(self, code: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSON:
        out: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            out["parameters"] = self.parameters
        return out


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes


@dataclass
class _InjectedError:
    method: str
    error: ApiError
    times: int
    predicate: Callable[[dict[str, Any]], bool] | None


@dataclass
class _InjectedDelay:
    method: str
    seconds: float
    deliver: bool
    times: int
    predicate: Callable[[dict[str, Any]], bool] | None


# What a request lost on its way is recorded with (it never reached "Telegram"): no answer came.
LOST = {"ok": False, "error_code": 504, "description": "lost on the way: never reached Telegram"}


# ---------------------------------------------------------------------------------------------
# HTML parse mode
# ---------------------------------------------------------------------------------------------


class HTMLParseError(ValueError):
    pass


_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
# tdlib's is_space: the end of the text counts as "\0", so it is a space too
_SPACE = frozenset(" \t\r\n\v\0")
_ATTR_NAME_END = _SPACE | frozenset("=>/\"'")
_NAME_TOKEN_RE = re.compile(r"[A-Za-z0-9.-]*")
# A reference as tdlib reads one: "&#" and at most 7 decimal digits, "&#x" and at most 6 hex digits
# (lower-case x only), or letters; the ";" is optional for tdlib and required by the Bot API docs.
_REFERENCE_RE = re.compile(r"&(?:#x([0-9A-Fa-f]*)|#([0-9]*)|([A-Za-z]*))(;?)")
_BARE_TAG_RE = re.compile(r"<(/?)([A-Za-z0-9-]*)[ \t\r\n\v]*>")
_TEXT_RUN_RE = re.compile(r"[^<&]+")


def utf16_len(text: str) -> int:
    if text.isascii():  # O(1) in CPython; most chunks of a message are ASCII
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _ascii_lower(text: str) -> str:
    """tdlib's to_lower: A-Z only (str.lower would also fold non-ASCII letters)."""
    return text.lower() if text.isascii() else "".join(c.lower() if "A" <= c <= "Z" else c for c in text)


def _reference(text: str, pos: int, strict: bool) -> tuple[str, int] | None:
    """The character a ``&`` at ``pos`` stands for and the index after the reference.

    tdlib's decode_html_entity: ``&lt`` ``&gt`` ``&amp`` ``&quot``, ``&#NN`` and ``&#xHH`` (value 1
    to 0x10FFFE, at most 7 decimal or 6 hex digits), the ``;`` optional; anything else is no
    reference, and tdlib keeps the ``&`` as it is.  ``strict`` follows the Bot API docs instead
    ("All <, > and & symbols that are not a part of a tag or an HTML entity must be replaced with
    the corresponding HTML entities"): such a ``&``, or a reference without its ``;``, raises.
    """
    m = _REFERENCE_RE.match(text, pos)
    assert m is not None
    hexa, dec, name, semicolon = m.groups()
    char: str | None = None
    if hexa is not None or dec is not None:
        digits = hexa if hexa is not None else dec
        # tdlib gives up when the reference is 10 bytes or longer before the ";"
        if digits and m.end() - len(semicolon) - pos < 10:
            code = int(digits, 16 if hexa is not None else 10)
            if 0 < code < 0x10FFFF:
                char = chr(code)
    else:
        char = _NAMED_ENTITIES.get(name)
    if char is not None and (semicolon or not strict):
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise HTMLParseError(
                "Text contains invalid Unicode characters after decoding HTML entities, "
                "check for unmatched surrogate code units"
            )
        return char, m.end()
    if strict:
        raise HTMLParseError(
            f"Character '&' is reserved and must be escaped as \"&amp;\" at byte offset {_byte_offset(text, pos)}"
        )
    return None


def _decode_text(text: str, start: int, end: int, strict_ampersand: bool) -> str:
    """Decode the character references in text[start:end] (attribute values)."""
    out: list[str] = []
    i = start
    while i < end:
        amp = text.find("&", i, end)
        if amp < 0:
            out.append(text[i:end])
            break
        out.append(text[i:amp])
        ref = _reference(text[:end], amp, strict_ampersand)
        if ref is None:
            out.append("&")
            i = amp + 1
        else:
            out.append(ref[0])
            i = ref[1]
    return "".join(out)


def parse_html(text: str, *, strict_ampersand: bool = True) -> tuple[str, list[JSON]]:
    """Parse Telegram's HTML parse mode into (plain text, entities).

    A port of tdlib's parse_html (td/telegram/MessageEntity.cpp), which the Bot API runs: only
    the documented tags; a ``<`` must start one (its name runs to a space or ``>``); attributes
    ``name="value"``, ``name='value'``, ``name=token`` (letters, digits, ``.`` and ``-``) or a bare
    name; tags properly nested and closed (``</>`` closes the innermost); ``span`` only with
    ``class="tg-spoiler"``; a ``tg-emoji`` needs a numeric ``emoji-id``.  Entity offsets and lengths
    are counted in UTF-16 code units.  With ``strict_ampersand`` (the default) a ``&`` must start
    one of ``&lt; &gt; &amp; &quot; &#NN; &#xHH;`` with its ``;``, as the Bot API docs demand
    (tdlib itself keeps a stray ``&`` as it is), which catches user text interpolated without
    ``html.escape``.  Raises HTMLParseError with tdlib's message.
    """
    out: list[str] = []
    pos16 = 0
    # stack entries: [tag, start offset (utf-16), argument, char index of "<", extra]
    stack: list[list[Any]] = []
    entities: list[JSON] = []
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    def where(k: int) -> str:
        return f"at byte offset {_byte_offset(text, k)}"

    i = 0
    while i < n:
        c = text[i]
        if c != "<" and c != "&":
            run = _TEXT_RUN_RE.match(text, i)
            assert run is not None
            chunk = run.group()
            out.append(chunk)
            pos16 += utf16_len(chunk)
            i = run.end()
            continue
        if c == "&":
            ref = _reference(text, i, strict_ampersand)
            chunk, i = ("&", i + 1) if ref is None else ref
            out.append(chunk)
            pos16 += utf16_len(chunk)
            continue

        begin = i
        # Fast path for the common tags without attributes ("<b>", "</b>"), in one regex match;
        # anything else (attributes, errors) goes through the general code below.
        bm = _BARE_TAG_RE.match(text, i)
        if bm is not None:
            slash, raw_name = bm.groups()
            name = raw_name.lower()
            if slash:
                if stack and (stack[-1][0] == name or not name):
                    _close_tag(stack.pop(), pos16, stack, entities)
                    i = bm.end()
                    continue
            elif name in _TAG_ENTITY and name != "span":  # a span needs its class
                stack.append([name, pos16, "", begin, {}])
                i = bm.end()
                continue

        i += 1
        if at(i) == "/":
            # an end tag: its name runs to a space or ">"
            if not stack:
                raise HTMLParseError(f"Unexpected end tag {where(begin)}")
            j = i
            while at(j) not in _SPACE and at(j) != ">":
                j += 1
            name = _ascii_lower(text[i + 1 : j])
            while j < n and at(j) in _SPACE:
                j += 1
            if at(j) != ">":
                raise HTMLParseError(f"Unclosed end tag {where(begin)}")
            top = stack[-1]
            if name and name != top[0]:
                raise HTMLParseError(
                    f'Unmatched end tag {where(begin)}, expected "</{top[0]}>", found "</{name}>"'
                )
            _close_tag(stack.pop(), pos16, stack, entities)
            i = j + 1
            continue

        # a start tag: its name runs to a space or ">"
        j = i
        while at(j) not in _SPACE and at(j) != ">":
            j += 1
        if j >= n:
            raise HTMLParseError(f"Unclosed start tag {where(begin)}")
        name = _ascii_lower(text[i:j])
        if name not in _TAG_ENTITY:
            raise HTMLParseError(f'Unsupported start tag "{name}" {where(begin)}')
        i = j
        argument = ""  # what tdlib keeps of the attributes: the one that matters for the tag
        while at(i) != ">":
            while i < n and at(i) in _SPACE:
                i += 1
            if at(i) == ">":
                break
            a = i
            while at(i) not in _ATTR_NAME_END:
                i += 1
            attr = text[a:i]  # case-sensitive, as in tdlib
            if not attr:
                raise HTMLParseError(f'Empty attribute name in the tag "{name}" {where(begin)}')
            while i < n and at(i) in _SPACE:
                i += 1
            if at(i) != "=":
                if i >= n:
                    raise HTMLParseError(f'Unclosed start tag "{name}" {where(begin)}')
                if name == "blockquote" and attr == "expandable":
                    argument = "1"
                continue
            i += 1
            while i < n and at(i) in _SPACE:
                i += 1
            if i >= n:
                raise HTMLParseError(f'Unclosed start tag "{name}" {where(begin)}')
            if at(i) not in "'\"":
                tm = _NAME_TOKEN_RE.match(text, i)
                assert tm is not None
                value = _ascii_lower(tm.group())
                if at(tm.end()) not in _SPACE and at(tm.end()) != ">":
                    raise HTMLParseError(f"Unexpected end of name token {where(i)}")
                i = tm.end()
            else:
                close = text.find(text[i], i + 1)
                if close < 0:
                    raise HTMLParseError(f"Unclosed start tag {where(begin)}")
                value = _decode_text(text, i + 1, close, strict_ampersand)
                i = close + 1
            if i >= n:
                raise HTMLParseError(f"Unclosed start tag {where(begin)}")
            if (name, attr) in (("a", "href"), ("tg-emoji", "emoji-id")):
                argument = value
            elif name == "code" and attr == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif name == "span" and attr == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif name == "blockquote" and attr == "expandable":
                argument = "1"
        i += 1  # the ">"
        if name == "span" and argument != "spoiler":
            raise HTMLParseError(f'Tag "span" must have class "tg-spoiler" {where(begin)}')
        stack.append([name, pos16, argument, begin, {}])

    if stack:
        raise HTMLParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_tag(top: list[Any], pos16: int, stack: list[list[Any]], entities: list[JSON]) -> None:
    name, start, argument, _begin, extra = top
    # <pre><code class="language-x">...</code></pre> gives one "pre" entity with a language
    if name == "code" and argument and stack and stack[-1][0] == "pre":
        stack[-1][4]["language"] = argument
        return
    length = pos16 - start
    if length <= 0:
        return
    kind = _TAG_ENTITY[name]
    entity: JSON = {"type": kind, "offset": start, "length": length}
    if name == "a":
        if not argument:
            return
        entity["url"] = argument
    elif name == "pre" and extra.get("language"):
        entity["language"] = extra["language"]
    elif name == "blockquote" and argument:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        # tdlib: to_integer_safe<int64>, and not 0
        if not re.fullmatch(r"-?(0|[1-9][0-9]{0,18})", argument) or not 0 < abs(int(argument)) < 2**63:
            raise HTMLParseError("Invalid custom emoji identifier specified")
        entity["custom_emoji_id"] = argument
    entities.append(entity)


# ---------------------------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------------------------


# http.client's limits on a request's header lines (its _MAXLINE and _MAXHEADERS)
_MAX_HEADER_LINE = 65536
_MAX_HEADERS = 100


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a bot opening many connections at once (updates of
    # several chats handled side by side, the sender's concurrent sends) had some refused or reset.
    request_queue_size = 128
    api: FakeBotAPI


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.api._track_connection(self.connection, add=True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.api._track_connection(self.connection, add=False)

    # -- speed: the stdlib's request parsing and response writing cost more CPU than the fake's
    #    own work on a small call, and it runs in the process of the bots under test.

    # "Name: value\r\n" as email's header parser reads it (a name of printable ASCII but ":"),
    # with no other CR or LF in the line (the parser would split the line there).
    _SIMPLE_HEADER_RE = re.compile(r"([\x21-\x39\x3b-\x7e]+):([^\r\n]*)\r\n\Z")
    # (second, its Date header), shared by all handlers
    _date_cache: ClassVar[tuple[int, str]] = (0, "")
    # lowercase name -> value of the request's first such header, when parsed by the fast path
    _header_index: dict[str, str] | None = None
    raw_requestline: bytes  # set by handle_one_request() (not in typeshed's stub)

    def header(self, name: str, default: str = "") -> str:
        """``self.headers.get(name, default)``; Message.get() lowercases every header's name on
        each call, the fast parse indexes them once (the first of a name wins, as in get())."""
        index = self._header_index
        if index is None:
            return str(self.headers.get(name, default))
        return index.get(name.lower(), default)

    def parse_request(self) -> bool:
        """BaseHTTPRequestHandler.parse_request() for "METHOD /path HTTP/1.1" requests with plain
        header lines, without the email package's generic parser (most of the stdlib's CPU per
        request).  ``self.headers`` is an HTTPMessage with the same headers the stdlib would
        give it.  Any other request line goes to the stdlib, and any other header block to
        email's parser, as before."""
        self._header_index = None
        requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if len(words) != 3 or words[2] != "HTTP/1.1" or self.protocol_version != "HTTP/1.1":
            return super().parse_request()
        self.requestline = requestline
        self.request_version = "HTTP/1.1"
        self.close_connection = False  # HTTP/1.1 keeps the connection unless told otherwise
        self.command, self.path = words[0], words[1]
        if self.path.startswith("//"):  # as the stdlib does (gh-87389)
            self.path = "/" + self.path.lstrip("/")
        # http.client.parse_headers(), with its limits
        lines: list[bytes] = []
        while True:
            line = self.rfile.readline(_MAX_HEADER_LINE + 1)
            if len(line) > _MAX_HEADER_LINE:
                self.send_error(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "Line too long",
                    str(http.client.LineTooLong("header line")),
                )
                return False
            lines.append(line)
            if len(lines) > _MAX_HEADERS:
                self.send_error(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "Too many headers",
                    f"got more than {_MAX_HEADERS} headers",
                )
                return False
            if line in (b"\r\n", b"\n", b""):
                break
        self.headers = self._header_message(lines)
        # the rest of the stdlib's parse_request()
        conntype = self.header("Connection")
        if conntype.lower() == "close":
            self.close_connection = True
        elif conntype.lower() == "keep-alive":
            self.close_connection = False
        expect = self.header("Expect")
        if expect.lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _header_message(self, lines: list[bytes]) -> email.message.Message:
        if lines[-1] == b"\r\n":
            # what email's feedparser and its compat32 policy make of "Name: value" lines
            parsed: list[tuple[str, str]] = []
            for raw in lines[:-1]:
                m = self._SIMPLE_HEADER_RE.match(raw.decode("iso-8859-1"))
                if m is None:
                    break
                parsed.append((m[1], m[2].lstrip(" \t")))
            else:
                msg = self.MessageClass()
                index: dict[str, str] = {}
                for name, value in parsed:
                    msg.set_raw(name, value)
                    index.setdefault(name.lower(), value)
                self._header_index = index
                return msg
        # continuation lines, malformed lines, a bare LF ...: http.client.parse_headers()
        return email.parser.Parser(_class=self.MessageClass).parsestr(b"".join(lines).decode("iso-8859-1"))

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header: formatted once a second rather than for every answer."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        now = int(time.time())
        cached = self._date_cache
        if cached[0] != now:
            cached = (now, email.utils.formatdate(now, usegmt=True))
            _Handler._date_cache = cached
        return cached[1]

    def end_headers_with_body(self, body: bytes) -> None:
        """end_headers() then wfile.write(body), in one write: two writes are two send() system
        calls (and two TCP segments), a large part of the CPU a small answer costs."""
        buffer = getattr(self, "_headers_buffer", None)
        if not isinstance(buffer, list) or self.request_version == "HTTP/0.9":
            self.end_headers()
            self.wfile.write(body)
            return
        buffer.append(b"\r\n")
        buffer.append(body)
        self.flush_headers()

    def do_POST(self) -> None:
        self.server.api._serve(self)

    def do_GET(self) -> None:
        self.server.api._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _read_body(handler: _Handler) -> bytes:
    if "chunked" in handler.header("Transfer-Encoding").lower():
        chunks: list[bytes] = []
        while True:
            line = handler.rfile.readline()
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    length = int(handler.header("Content-Length") or 0)
    return handler.rfile.read(length) if length > 0 else b""


def _decode_param(name: str, raw: str) -> Any:
    if name in _STRING_PARAMS:
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


# A "%" that does not start a %XX escape (unquote() keeps it as it is).
_BARE_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _form_unquote(value: str) -> str:
    """``urllib.parse.unquote_plus(value)``, in C for what form encoders send.

    A text of a few hundred characters has a few hundred %XX escapes (every "<", "/", non-ASCII
    byte ...), and unquote() decodes them one by one in Python.  binascii.a2b_qp() decodes
    quoted-printable's =XX escapes in C; it agrees with unquote() on an ASCII string with "%"
    turned into "=" as long as the string has no "=" of its own and no "%" outside a %XX escape
    (a2b_qp would drop or merge those): anything else goes to unquote().
    """
    value = value.replace("+", " ")
    if "%" not in value:
        return value
    if value.isascii() and "=" not in value and _BARE_PERCENT_RE.search(value) is None:
        return binascii.a2b_qp(value.replace("%", "=")).decode("utf-8", "replace")
    return unquote(value)


def _parse_form(text: str) -> list[tuple[str, str]]:
    """``parse_qsl(text, keep_blank_values=True)``, with the faster _form_unquote."""
    pairs: list[tuple[str, str]] = []
    for name_value in text.split("&"):
        if not name_value:
            continue
        name, _, value = name_value.partition("=")
        pairs.append((_form_unquote(name), _form_unquote(value)))
    return pairs


def _form_unescape(value: str) -> str:
    """Undo the HTML5 escaping httpx applies to multipart names/filenames."""
    return value.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def parse_request_params(
    content_type: str, body: bytes, query: str = ""
) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """Decode a Bot API request the way the Telegram server does."""
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    for key, raw in _parse_form(query):
        params[key] = _decode_param(key, raw)
    ctype = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params, files
    if ctype == "multipart/form-data":
        head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\nMIME-Version: 1.0\r\n\r\n"
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not msg.is_multipart():
            raise bad_request("can't parse multipart/form-data")
        parts = msg.get_payload()
        assert isinstance(parts, list)
        for part in parts:
            if not isinstance(part, email.message.Message):
                continue
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, tuple):  # RFC 2231 encoded
                name = email.utils.collapse_rfc2231_value(name)
            if not name:
                continue
            name = _form_unescape(str(name))
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = UploadedFile(
                    field=name,
                    filename=_form_unescape(filename),
                    content_type=part.get_content_type(),
                    content=data,
                )
            else:
                params[name] = _decode_param(name, data.decode("utf-8"))
    elif ctype == "application/json":
        decoded = json.loads(body.decode("utf-8"))
        if not isinstance(decoded, dict):
            raise bad_request("JSON object expected")
        params.update(decoded)
    else:  # application/x-www-form-urlencoded (also what a bare body is treated as)
        for key, raw in _parse_form(body.decode("utf-8")):
            params[key] = _decode_param(key, raw)
    for name, upload in files.items():
        params.setdefault(name, upload)
    return params, files


# ---------------------------------------------------------------------------------------------
# The fake API
# ---------------------------------------------------------------------------------------------


class FakeBotAPI:
    """In-process fake of api.telegram.org.  See the module docstring."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        bot_id: int = 123456,
        bot_username: str = "casebot_test",
        *,
        bot_first_name: str = "Casebot Test",
        rate_limits: bool = False,
        strict_html_ampersand: bool = True,
        latency: float = 0.0,
        first_update_id: int = 1,
    ) -> None:
        self.token = token
        self.latency = latency  # seconds each call takes (getUpdates aside)
        self.bot_id = bot_id
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.rate_limits = rate_limits
        self.strict_html_ampersand = strict_html_ampersand

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)

        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], JSON] = {}
        """Messages sent (and edited) by the bot, keyed by (chat_id, message_id)."""
        self.user_messages: dict[tuple[int, int], JSON] = {}
        # The bot's reactions on messages (setMessageReaction), by (chat_id, message_id).
        self.reactions: dict[tuple[int, int], list[JSON]] = {}
        """Messages injected as coming from users, keyed by (chat_id, message_id)."""
        self.server_errors: list[str] = []
        """Tracebacks of exceptions inside the fake itself (answered with HTTP 500)."""
        self.count_429 = 0
        self.webhook_url = ""

        self._updates: list[JSON] = []  # not yet confirmed
        # Telegram's update ids go up from "a certain positive number": a bot restarted against a
        # new fake must not see the ids of its last run again.
        self.first_update_id = first_update_id
        self._next_update_id = first_update_id
        self._max_fetched_update_id = first_update_id - 1
        self._msg_counters: dict[int, int] = {}
        self._chats: dict[int, JSON] = {}
        self._users: dict[int, JSON] = {}
        self._members: dict[tuple[int, int], JSON] = {}
        self._blocked: set[int] = set()
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._media: dict[str, tuple[str, Any]] = {}
        self._pending_callbacks: set[str] = set()
        self._commands: dict[tuple[str, str], list[JSON]] = {}
        self._injected_errors: list[_InjectedError] = []
        self._injected_delays: list[_InjectedDelay] = []
        self._seq = itertools.count(1)
        self._rate_global: deque[float] = deque()
        self._rate_chat: dict[int, deque[float]] = {}
        self._last_activity = time.monotonic()
        self._in_flight = 0
        self._connections: set[socket.socket] = set()
        self._stopping = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

        self._handlers: dict[str, Callable[[dict[str, Any], dict[str, UploadedFile]], Any]] = {
            "getMe": self._m_get_me,
            "deleteWebhook": self._m_delete_webhook,
            "setWebhook": self._m_set_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "setMyCommands": self._m_set_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "editMessageCaption": self._m_edit_message_caption,
            "deleteMessage": self._m_delete_message,
            "setMessageReaction": self._m_set_message_reaction,
            "deleteMessages": self._m_delete_messages,
            "answerCallbackQuery": self._m_answer_callback_query,
            "sendPhoto": self._media_sender("photo"),
            "sendDocument": self._media_sender("document"),
            "sendVideo": self._media_sender("video"),
            "sendAudio": self._media_sender("audio"),
            "sendAnimation": self._media_sender("animation"),
            "sendVoice": self._media_sender("voice"),
            "sendMediaGroup": self._m_send_media_group,
            "copyMessage": self._m_copy_message,
            "forwardMessage": self._m_forward_message,
            "getChat": self._m_get_chat,
            "getChatMember": self._m_get_chat_member,
            "getChatAdministrators": self._m_get_chat_administrators,
            "getChatMemberCount": self._m_get_chat_member_count,
            "getFile": self._m_get_file,
            "sendChatAction": self._m_true,
            "leaveChat": self._m_true,
            "close": self._m_true,
            "logOut": self._m_true,
        }
        self._canonical = {name.lower(): name for name in self._handlers}
        self._canonical["getupdates"] = "getUpdates"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeBotAPI:
        if self._server is not None:
            return self
        self._stopping = False
        server = _Server(("127.0.0.1", 0), _Handler)
        server.api = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeBotAPI:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeBotAPI is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- HTTP -----------------------------------------------------------------------------------

    def _serve(self, handler: _Handler) -> None:
        on_sent: Callable[[], None] | None = None
        try:
            if self._stopping:
                handler.close_connection = True
            split = urlsplit(handler.path)
            path = unquote(split.path)
            body = _read_body(handler)
            if path.startswith("/file/bot"):
                token, _, file_path = path[len("/file/bot") :].partition("/")
                if token != self.token:
                    status, payload = 401, self._json_bytes(ApiError(401, "Unauthorized").payload())
                    content_type = "application/json"
                else:
                    with self._lock:
                        stored = self._files_by_path.get(file_path)
                    if stored is None:
                        status = 404
                        payload = self._json_bytes(ApiError(404, "Not Found").payload())
                        content_type = "application/json"
                    else:
                        status, payload = 200, stored.content
                        content_type = "application/octet-stream"
            elif path.startswith("/bot"):
                token, _, method = path[len("/bot") :].partition("/")
                content_type = "application/json"
                if token != self.token:
                    status = 401
                    payload = self._json_bytes(ApiError(401, "Unauthorized").payload())
                elif not method or "/" in method:
                    status, payload = 404, self._json_bytes(ApiError(404, "Not Found").payload())
                else:
                    try:
                        params, files = parse_request_params(
                            handler.header("Content-Type"), body, split.query
                        )
                    except ApiError as exc:
                        status, payload = exc.code, self._json_bytes(exc.payload())
                    else:
                        status, answer, on_sent = self._dispatch(method, params, files)
                        payload = self._json_bytes(answer)
            else:
                content_type = "application/json"
                status, payload = 404, self._json_bytes(ApiError(404, "Not Found").payload())
        except Exception:
            tb = traceback.format_exc()
            with self._lock:
                self.server_errors.append(tb)
            status, content_type = 500, "application/json"
            payload = self._json_bytes(
                {"ok": False, "error_code": 500, "description": f"Internal fake error: {tb}"}
            )
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            if handler.close_connection:
                handler.send_header("Connection", "close")
            handler.end_headers_with_body(payload)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True
            return
        if on_sent is not None:
            on_sent()

    @staticmethod
    def _json_bytes(obj: Any) -> bytes:
        return _JSON_ENCODER.encode(obj).encode("utf-8")

    def _dispatch(
        self, method: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[int, JSON, Callable[[], None] | None]:
        name = self._canonical.get(method.lower(), method)
        if name == "getUpdates":
            return self._dispatch_get_updates(params, files)
        if self.latency:  # the network's round trip, as from a phone's country to Telegram
            time.sleep(self.latency)
        delay = self._take_delay(name, params)
        if delay is None:
            return self._dispatch_now(name, params, files)
        if not delay.deliver:  # lost on the way: recorded as it arrives, then no answer in time
            self._record(name, params, None, files, error=dict(LOST))
            time.sleep(delay.seconds)
            return 504, dict(LOST), None
        answer = self._dispatch_now(name, params, files)  # done, but answered late
        time.sleep(delay.seconds)
        return answer

    def _take_delay(self, method: str, params: dict[str, Any]) -> _InjectedDelay | None:
        with self._lock:
            for inj in self._injected_delays:
                if inj.method == method and (inj.predicate is None or inj.predicate(params)):
                    inj.times -= 1
                    if inj.times <= 0:
                        self._injected_delays.remove(inj)
                    return inj
        return None

    def _dispatch_now(
        self, name: str, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[int, JSON, Callable[[], None] | None]:
        with self._lock:
            self._in_flight += 1
            self._last_activity = time.monotonic()
            try:
                try:
                    self._raise_injected_error(name, params)
                    commit = self._check_rate(name, params)
                    handler = self._handlers.get(name, self._m_true)
                    result = handler(params, files)
                    if commit is not None:
                        commit()
                except ApiError as exc:
                    answer = exc.payload()
                    self._record(name, params, None, files, error=answer)
                    return exc.code, answer, None
                self._record(name, params, result, files)
                return 200, {"ok": True, "result": result}, None
            finally:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        result: Any,
        files: dict[str, UploadedFile],
        error: JSON | None = None,
    ) -> None:
        with self._lock:
            self.calls.append(
                Call(
                    method=method,
                    params=params,
                    result=_copy_json(result),
                    at=time.time(),
                    error=error,
                    files=files,
                )
            )

    def _raise_injected_error(self, method: str, params: dict[str, Any]) -> None:
        for inj in self._injected_errors:
            if inj.method == method and (inj.predicate is None or inj.predicate(params)):
                inj.times -= 1
                if inj.times <= 0:
                    self._injected_errors.remove(inj)
                raise inj.error

    # -- rate limits ----------------------------------------------------------------------------

    def _check_rate(self, method: str, params: dict[str, Any]) -> Callable[[], None] | None:
        if not self.rate_limits:
            return None
        counted = (
            method.startswith(("send", "edit")) and method not in _RATE_EXEMPT
        ) or method in _RATE_EXTRA
        if not counted:
            return None
        now = time.monotonic()
        waits: list[float] = []
        glob = self._rate_global
        while glob and glob[0] <= now - 1.0:
            glob.popleft()
        if len(glob) >= 30:
            waits.append(glob[0] + 1.0 - now)
        chat_id = params.get("chat_id")
        chat_q: deque[float] | None = None
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            window, limit = (1.0, 1) if chat_id > 0 else (60.0, 20)
            chat_q = self._rate_chat.setdefault(chat_id, deque())
            while chat_q and chat_q[0] <= now - window:
                chat_q.popleft()
            if len(chat_q) >= limit:
                waits.append(chat_q[0] + window - now)
        if waits:
            self.count_429 += 1
            retry = max(1, math.ceil(max(waits)))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})

        def commit() -> None:
            stamp = time.monotonic()
            glob.append(stamp)
            if chat_q is not None:
                chat_q.append(stamp)

        return commit

    # -- getUpdates -----------------------------------------------------------------------------

    def _dispatch_get_updates(
        self, params: dict[str, Any], files: dict[str, UploadedFile]
    ) -> tuple[int, JSON, Callable[[], None] | None]:
        try:
            offset = self._int_param(params, "offset", None)
            limit = self._int_param(params, "limit", 100)
            timeout = params.get("timeout", 0)
            if not isinstance(timeout, int | float) or isinstance(timeout, bool):
                raise bad_request("invalid timeout specified")
            limit = min(max(limit if limit is not None else 100, 1), 100)
        except ApiError as exc:
            self._record("getUpdates", params, None, files, error=exc.payload())
            return exc.code, exc.payload(), None
        deadline = time.monotonic() + max(0.0, float(timeout))
        with self._cond:
            if offset is not None:
                if offset < 0:
                    self._updates = self._updates[offset:]
                else:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = _copy_json(self._updates[:limit])
            self._record("getUpdates", params, batch, files)
        top = batch[-1]["update_id"] if batch else 0

        def on_sent() -> None:
            if top:
                with self._lock:
                    self._max_fetched_update_id = max(self._max_fetched_update_id, top)
                    self._last_activity = time.monotonic()

        return 200, {"ok": True, "result": batch}, on_sent

    # -- parameter helpers ----------------------------------------------------------------------

    @staticmethod
    def _int_param(params: dict[str, Any], key: str, default: int | None) -> int | None:
        value = params.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool):
            raise bad_request(f"invalid {key} specified")
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            raise bad_request(f"invalid {key} specified") from None

    def _chat_id(self, params: dict[str, Any], key: str = "chat_id") -> int:
        value = params.get(key)
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, bool):
            raise bad_request("chat not found")
        if isinstance(value, int):
            chat_id = value
        else:
            try:
                chat_id = int(str(value))
            except ValueError:
                raise bad_request("chat not found") from None
        return chat_id

    def _writable_chat_id(self, params: dict[str, Any]) -> int:
        chat_id = self._chat_id(params)
        if chat_id in self._blocked:
            if chat_id > 0:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        return chat_id

    def _message_id(self, params: dict[str, Any], key: str = "message_id") -> int:
        value = self._int_param(params, key, None)
        if value is None:
            raise bad_request("message identifier is not specified")
        return value

    # -- entity helpers -------------------------------------------------------------------------

    def bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _chat_for(self, chat_id: int) -> JSON:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                user = self._users.get(chat_id)
                chat = (
                    self.private_chat(user)
                    if user
                    else {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
                )
            else:
                chat = {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
            self._chats[chat_id] = chat
        return _copy_json(chat)

    def _user_for(self, user_id: int) -> JSON:
        if user_id == self.bot_id:
            return self.bot_user()
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        return _copy_json(user)

    def _alloc_message_id(self, chat_id: int) -> int:
        with self._lock:
            nxt = self._msg_counters.get(chat_id, 0) + 1
            self._msg_counters[chat_id] = nxt
            return nxt

    def _find_message(self, chat_id: int, message_id: int) -> JSON | None:
        key = (chat_id, message_id)
        return self.messages.get(key) or self.user_messages.get(key)

    @staticmethod
    def _public(msg: JSON) -> JSON:
        """A copy of a stored message as Telegram returns it: only inline keyboards appear as
        ``reply_markup`` (force_reply / reply keyboards are kept in ``messages`` for tests but
        never returned; PTB could not even parse them as a Message.reply_markup)."""
        # One pass, in the message's key order (as copying it whole, then deleting the markup
        # and replacing the reply, would give), without copying the reply twice.
        out: JSON = {}
        for key, value in msg.items():
            if isinstance(value, dict):
                if key == "reply_markup" and "inline_keyboard" not in value:
                    continue
                if key == "reply_to_message":
                    out[key] = FakeBotAPI._public(value)
                    continue
            out[key] = _copy_json(value)
        return out

    @staticmethod
    def _strip_reply(msg: JSON) -> JSON:
        out = FakeBotAPI._public(msg)
        out.pop("reply_to_message", None)
        return out

    def _formatted(
        self, value: Any, parse_mode: Any, entities: Any, *, caption: bool
    ) -> tuple[str, list[JSON]]:
        text = value if isinstance(value, str) else json.dumps(value)
        mode = parse_mode.lower() if isinstance(parse_mode, str) else ""
        if mode == "html":
            try:
                plain, ents = parse_html(text, strict_ampersand=self.strict_html_ampersand)
            except HTMLParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        elif mode in ("", "markdown", "markdownv2"):
            plain = text
            # copies: the entities are stored, and the params they come from are recorded
            ents = (
                [_copy_json(e) for e in entities if isinstance(e, dict)] if isinstance(entities, list) else []
            )
        else:
            raise bad_request("unsupported parse_mode")
        if caption:
            if len(text) > MAX_CAPTION_LENGTH:
                raise bad_request("message caption is too long")
        else:
            if len(text) > MAX_MESSAGE_LENGTH:
                raise bad_request("message is too long")
            if not plain.strip():
                raise bad_request("message text is empty")
        return plain, ents

    @staticmethod
    def _checked_markup(markup: Any) -> JSON | None:
        """Validate reply_markup (strictly for inline keyboards) and return a copy of it."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is None:
            return _copy_json(markup)
        if not isinstance(keyboard, list) or not all(isinstance(r, list) for r in keyboard):
            raise bad_request('can\'t parse inline keyboard button: field "inline_keyboard"')
        for row in keyboard:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad_request("can't parse inline keyboard button: Text must be a String")
                if not _BUTTON_ACTIONS & button.keys():
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the "
                        "inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and (
                    not isinstance(data, str)
                    or not data
                    or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
                ):
                    raise bad_request("BUTTON_DATA_INVALID")
        return _copy_json(markup)

    def _new_bot_message(self, chat_id: int, params: dict[str, Any]) -> JSON:
        reply_to: JSON | None = None
        reply_params = params.get("reply_parameters")
        reply_id: Any = None
        allow_missing = bool(params.get("allow_sending_without_reply"))
        if isinstance(reply_params, dict):
            reply_id = reply_params.get("message_id")
            allow_missing = allow_missing or bool(reply_params.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            reply_id = params.get("reply_to_message_id")
        if isinstance(reply_id, int) and not isinstance(reply_id, bool):
            found = self._find_message(chat_id, reply_id)
            if found is None and not allow_missing:
                raise bad_request("message to be replied not found")
            if found is not None:
                reply_to = self._strip_reply(found)
        msg: JSON = {
            "message_id": self._alloc_message_id(chat_id),
            "from": self.bot_user(),
            "chat": self._chat_for(chat_id),
            "date": int(time.time()),
        }
        thread_id = params.get("message_thread_id")
        if isinstance(thread_id, int) and not isinstance(thread_id, bool):
            msg["message_thread_id"] = thread_id
            msg["is_topic_message"] = True
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        if params.get("protect_content"):
            msg["has_protected_content"] = True
        return msg

    # -- files ----------------------------------------------------------------------------------

    _FILE_PREFIX: ClassVar[dict[str, str]] = {
        "photo": "AgAC",
        "document": "BQAC",
        "video": "BAAC",
        "audio": "CQAC",
        "animation": "CgAC",
        "voice": "AwAC",
    }
    _FILE_FOLDER: ClassVar[dict[str, tuple[str, str]]] = {
        "photo": ("photos", ".jpg"),
        "document": ("documents", ""),
        "video": ("videos", ".mp4"),
        "audio": ("music", ".mp3"),
        "animation": ("animations", ".mp4"),
        "voice": ("voice", ".oga"),
    }

    def _store_file(
        self, kind: str, content: bytes, file_name: str | None, file_id: str | None = None
    ) -> _StoredFile:
        n = next(self._seq)
        fid = file_id or f"{self._FILE_PREFIX.get(kind, 'BQAC')}-fake-{n}"
        folder, ext = self._FILE_FOLDER.get(kind, ("documents", ""))
        if file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        stored = _StoredFile(
            file_id=fid,
            file_unique_id=f"AQAD{n}",
            file_path=f"{folder}/file_{n}{ext}",
            content=content,
        )
        with self._lock:
            self._files[fid] = stored
            self._files_by_path[stored.file_path] = stored
        return stored

    def _make_media(
        self,
        kind: str,
        content: bytes,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_id: str | None = None,
    ) -> Any:
        """Create (and register) a media object: list of PhotoSize for photos, else a dict."""
        if kind == "photo":
            big = self._store_file("photo", content, file_name, file_id)
            small = self._store_file("photo", content, file_name, f"{big.file_id}-s")
            sizes = [
                {
                    "file_id": small.file_id,
                    "file_unique_id": small.file_unique_id,
                    "file_size": max(1, len(content) // 10),
                    "width": 90,
                    "height": 68,
                },
                {
                    "file_id": big.file_id,
                    "file_unique_id": big.file_unique_id,
                    "file_size": len(content),
                    "width": 800,
                    "height": 600,
                },
            ]
            with self._lock:
                self._media[big.file_id] = ("photo", sizes)
                self._media[small.file_id] = ("photo", sizes)
            return _copy_json(sizes)
        stored = self._store_file(kind, content, file_name, file_id)
        obj: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(content),
        }
        default_mime = {
            "document": "application/octet-stream",
            "video": "video/mp4",
            "audio": "audio/mpeg",
            "animation": "video/mp4",
            "voice": "audio/ogg",
        }.get(kind, "application/octet-stream")
        if kind in ("document", "video", "audio", "animation") and file_name:
            obj["file_name"] = file_name
        obj["mime_type"] = mime_type or default_mime
        if kind in ("video", "animation"):
            obj.update({"width": 640, "height": 360, "duration": 1})
        elif kind in ("audio", "voice"):
            obj["duration"] = 1
        with self._lock:
            self._media[stored.file_id] = (kind, obj)
        return _copy_json(obj)

    def _media_from_param(self, kind: str, value: Any, files: dict[str, UploadedFile]) -> Any:
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f'can\'t find attached file "{value}"')
            value = upload
        if isinstance(value, UploadedFile):
            mime = value.content_type if value.content_type != "text/plain" else None
            return self._make_media(kind, value.content, value.filename, mime)
        if isinstance(value, str) and value:
            known = self._media.get(value)
            if known is not None:
                return _copy_json(known[1])
            if value.startswith(("http://", "https://")):
                name = value.rstrip("/").rsplit("/", 1)[-1] or None
                return self._make_media(kind, b"", name)
        raise bad_request("wrong file identifier/HTTP URL specified")

    def file_content(self, file_id: str) -> bytes:
        """Bytes of an uploaded or injected file."""
        with self._lock:
            return self._files[file_id].content

    # -- method implementations -----------------------------------------------------------------

    def _m_true(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return True

    def _m_get_me(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return {
            **self.bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _m_delete_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.webhook_url = ""
        if params.get("drop_pending_updates"):
            if self._updates:
                top = self._updates[-1]["update_id"]
                self._max_fetched_update_id = max(self._max_fetched_update_id, top)
            self._updates = []
        return True

    def _m_set_webhook(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self.webhook_url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            self._updates = []
        return True

    def _m_get_webhook_info(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return {
            "url": self.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }

    @staticmethod
    def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    def _m_set_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for cmd in commands:
            if not isinstance(cmd, dict) or not _COMMAND_RE.match(str(cmd.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            desc = cmd.get("description")
            if not isinstance(desc, str) or not 1 <= len(desc) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self._commands[self._commands_key(params)] = _copy_json(commands)
        return True

    def _m_delete_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _m_get_my_commands(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        return _copy_json(self._commands.get(self._commands_key(params), []))

    def _m_send_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._writable_chat_id(params)
        if params.get("text") in (None, ""):
            raise bad_request("message text is empty")
        text, entities = self._formatted(
            params["text"], params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._checked_markup(params.get("reply_markup"))
        msg = self._new_bot_message(chat_id, params)
        msg["text"] = text
        if entities:
            msg["entities"] = entities
        if isinstance(params.get("link_preview_options"), dict):
            msg["link_preview_options"] = _copy_json(params["link_preview_options"])
        if markup is not None:
            msg["reply_markup"] = markup
        self.messages[(chat_id, msg["message_id"])] = msg
        return self._public(msg)

    def _editable(self, params: dict[str, Any]) -> tuple[tuple[int, int], JSON] | None:
        """Return ((chat_id, message_id), message) or None for inline messages."""
        if params.get("inline_message_id"):
            return None
        chat_id = self._chat_id(params)
        message_id = self._message_id(params)
        key = (chat_id, message_id)
        msg = self.messages.get(key)
        if msg is None:
            if key in self.user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        markup = msg.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" not in markup:
            # Sent with force_reply or a reply keyboard: Telegram refuses every edit of it
            # ("only messages without reply_markup or with inline keyboards"; tdlib/td#3196).
            raise bad_request("message can't be edited")
        return key, msg

    def _store_edit(self, key: tuple[int, int], old: JSON, changes: JSON) -> JSON:
        # A copy of the old message but for the fields the edit replaces (None holds their
        # place, so that the key order is the one of the old message).
        new = {k: None if k in changes else _copy_json(v) for k, v in old.items()}
        for k, v in changes.items():
            if v is None or v == []:
                new.pop(k, None)
            else:
                new[k] = v
        new["edit_date"] = int(time.time())
        self.messages[key] = new
        return self._public(new)

    def _m_edit_message_text(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        found = self._editable(params)
        if params.get("text") in (None, ""):
            raise bad_request("message text is empty")
        text, entities = self._formatted(
            params["text"], params.get("parse_mode"), params.get("entities"), caption=False
        )
        markup = self._checked_markup(params.get("reply_markup"))
        if found is None:
            return True
        key, old = found
        if "text" not in old:
            raise bad_request("there is no text in the message to edit")
        if (
            old.get("text") == text
            and old.get("entities", []) == entities
            and old.get("reply_markup") == markup
        ):
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        changes: JSON = {"text": text, "entities": entities, "reply_markup": markup}
        if isinstance(params.get("link_preview_options"), dict):
            changes["link_preview_options"] = _copy_json(params["link_preview_options"])
        return self._store_edit(key, old, changes)

    def _m_edit_message_reply_markup(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        found = self._editable(params)
        markup = self._checked_markup(params.get("reply_markup"))
        if found is None:
            return True
        key, old = found
        if old.get("reply_markup") == markup:
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        return self._store_edit(key, old, {"reply_markup": markup})

    def _m_edit_message_caption(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        found = self._editable(params)
        caption: str | None = None
        entities: list[JSON] = []
        if params.get("caption") not in (None, ""):
            caption, entities = self._formatted(
                params["caption"],
                params.get("parse_mode"),
                params.get("caption_entities"),
                caption=True,
            )
        markup = self._checked_markup(params.get("reply_markup"))
        if found is None:
            return True
        key, old = found
        if "text" in old:
            raise bad_request("there is no caption in the message to edit")
        if (
            old.get("caption") == caption
            and old.get("caption_entities", []) == entities
            and old.get("reply_markup") == markup
        ):
            raise bad_request(NOT_MODIFIED[len("Bad Request: ") :])
        return self._store_edit(
            key, old, {"caption": caption, "caption_entities": entities, "reply_markup": markup}
        )

    def _m_delete_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        key = (self._chat_id(params), self._message_id(params))
        if self.messages.pop(key, None) is None and self.user_messages.pop(key, None) is None:
            raise bad_request("message to delete not found")
        return True

    # The emoji a bot may react with (Bot API, ReactionTypeEmoji).
    REACTIONS: ClassVar[frozenset[str]] = frozenset({
        "👍", "👎", "❤", "🔥", "🥰", "👏", "😁", "🤔", "🤯", "😱", "🤬", "😢", "🎉", "🤩", "🤮", "💩", "🙏", "👌",
        "🕊", "🤡", "🥱", "🥴", "😍", "🐳", "❤‍🔥", "🌚", "🌭", "💯", "🤣", "⚡", "🍌", "🏆", "💔", "🤨", "😐", "🍓",
        "🍾", "💋", "🖕", "😈", "😴", "😭", "🤓", "👻", "👨‍💻", "👀", "🎃", "🙈", "😇", "😨", "🤝", "✍", "🤗", "🫡",
        "🎅", "🎄", "☃", "💅", "🤪", "🗿", "🆒", "💘", "🙉", "🦄", "😘", "💊", "🙊", "😎", "👾", "🤷‍♂", "🤷",
        "🤷‍♀", "😡",
    })

    def _m_set_message_reaction(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        key = (self._chat_id(params), self._message_id(params))
        if self._find_message(*key) is None:
            raise bad_request("message to react not found")
        reaction = params.get("reaction", [])
        if isinstance(reaction, str):
            reaction = json.loads(reaction)
        if not isinstance(reaction, list) or len(reaction) > 1:
            raise bad_request("REACTIONS_TOO_MANY")
        for r in reaction:
            if not isinstance(r, dict) or r.get("type") != "emoji" or r.get("emoji") not in self.REACTIONS:
                raise bad_request("REACTION_INVALID")
        self.reactions[key] = _copy_json(reaction)
        return True

    def _m_delete_messages(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._chat_id(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise bad_request("message identifiers are not specified")
        for mid in ids:
            self.messages.pop((chat_id, mid), None)
            self.user_messages.pop((chat_id, mid), None)
        return True

    def _m_answer_callback_query(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        if query_id not in self._pending_callbacks:
            raise bad_request(QUERY_TOO_OLD[len("Bad Request: ") :])
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self._pending_callbacks.discard(query_id)
        return True

    def _media_sender(self, kind: str) -> Callable[[dict[str, Any], dict[str, UploadedFile]], Any]:
        def send(params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
            chat_id = self._writable_chat_id(params)
            if kind not in params:
                raise bad_request(f"there is no {kind} in the request")
            caption: str | None = None
            entities: list[JSON] = []
            if params.get("caption") not in (None, ""):
                caption, entities = self._formatted(
                    params["caption"],
                    params.get("parse_mode"),
                    params.get("caption_entities"),
                    caption=True,
                )
            markup = self._checked_markup(params.get("reply_markup"))
            media = self._media_from_param(kind, params[kind], files)
            msg = self._new_bot_message(chat_id, params)
            msg[kind] = media
            if caption is not None:
                msg["caption"] = caption
                if entities:
                    msg["caption_entities"] = entities
            if markup is not None:
                msg["reply_markup"] = markup
            self.messages[(chat_id, msg["message_id"])] = msg
            return self._public(msg)

        return send

    def _m_send_media_group(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._writable_chat_id(params)
        media = params.get("media")
        if not isinstance(media, list) or not 2 <= len(media) <= 10:
            raise bad_request("media group must contain 2-10 items")
        prepared: list[tuple[str, Any, str | None, list[JSON]]] = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in (
                "photo",
                "video",
                "document",
                "audio",
            ):
                raise bad_request("can't parse InputMedia: unsupported media type")
            caption: str | None = None
            entities: list[JSON] = []
            if item.get("caption") not in (None, ""):
                caption, entities = self._formatted(
                    item["caption"],
                    item.get("parse_mode"),
                    item.get("caption_entities"),
                    caption=True,
                )
            prepared.append(
                (
                    item["type"],
                    self._media_from_param(item["type"], item.get("media"), files),
                    caption,
                    entities,
                )
            )
        group_id = str(10**13 + next(self._seq))
        out: list[JSON] = []
        for kind, obj, caption, entities in prepared:
            msg = self._new_bot_message(chat_id, params)
            msg["media_group_id"] = group_id
            msg[kind] = obj
            if caption is not None:
                msg["caption"] = caption
                if entities:
                    msg["caption_entities"] = entities
            self.messages[(chat_id, msg["message_id"])] = msg
            out.append(self._public(msg))
        return out

    def _source_message(self, params: dict[str, Any], what: str) -> JSON:
        from_chat = self._chat_id(params, "from_chat_id")
        source = self._find_message(from_chat, self._message_id(params))
        if source is None:
            raise bad_request(f"message to {what} not found")
        return source

    def _m_copy_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._writable_chat_id(params)
        source = self._source_message(params, "copy")
        markup = self._checked_markup(params.get("reply_markup"))
        msg = self._new_bot_message(chat_id, params)
        for key in _CONTENT_KEYS:
            if key in source:
                msg[key] = _copy_json(source[key])
        if "caption" in params and "text" not in source:
            msg.pop("caption", None)
            msg.pop("caption_entities", None)
            if params["caption"] not in (None, ""):
                caption, entities = self._formatted(
                    params["caption"],
                    params.get("parse_mode"),
                    params.get("caption_entities"),
                    caption=True,
                )
                msg["caption"] = caption
                if entities:
                    msg["caption_entities"] = entities
        if markup is not None:
            msg["reply_markup"] = markup
        self.messages[(chat_id, msg["message_id"])] = msg
        return {"message_id": msg["message_id"]}

    def _m_forward_message(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._writable_chat_id(params)
        source = self._source_message(params, "forward")
        msg = self._new_bot_message(chat_id, {})
        for key in _CONTENT_KEYS:
            if key in source:
                msg[key] = _copy_json(source[key])
        origin = source.get("forward_origin")
        if origin is None:
            sender = source.get("from") or {}
            origin = {"type": "user", "date": source["date"], "sender_user": sender}
        msg["forward_origin"] = _copy_json(origin)
        msg["forward_date"] = origin["date"]
        if origin.get("type") == "user":
            msg["forward_from"] = _copy_json(origin["sender_user"])
        elif origin.get("type") == "hidden_user":
            msg["forward_sender_name"] = origin.get("sender_user_name")
        self.messages[(chat_id, msg["message_id"])] = msg
        return self._public(msg)

    def _m_get_chat(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat = self._chat_for(self._chat_id(params))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        if chat["type"] != "private":
            chat.setdefault("permissions", {"can_send_messages": True, "can_send_other_messages": True})
        return chat

    def _member(self, chat_id: int, user_id: int) -> JSON:
        override = self._members.get((chat_id, user_id))
        if override is not None:
            return _copy_json(override)
        if user_id == self.bot_id and chat_id < 0:
            return self._member_dict(chat_id, self.bot_user(), "administrator")
        return self._member_dict(chat_id, self._user_for(user_id), "member")

    @staticmethod
    def _member_dict(chat_id: int, user: JSON, status: str, **extra: Any) -> JSON:
        member: JSON = {"status": status, "user": _copy_json(user)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                {
                    "can_be_edited": False,
                    "is_anonymous": False,
                    "can_manage_chat": True,
                    "can_delete_messages": True,
                    "can_manage_video_chats": True,
                    "can_restrict_members": True,
                    "can_promote_members": False,
                    "can_change_info": True,
                    "can_invite_users": True,
                    "can_post_stories": False,
                    "can_edit_stories": False,
                    "can_delete_stories": False,
                    "can_pin_messages": True,
                }
            )
        elif status == "kicked":
            member["until_date"] = 0
        elif status == "restricted":
            member.update(
                {
                    "is_member": True,
                    "until_date": 0,
                    **{
                        perm: False
                        for perm in (
                            "can_send_messages",
                            "can_send_audios",
                            "can_send_documents",
                            "can_send_photos",
                            "can_send_videos",
                            "can_send_video_notes",
                            "can_send_voice_notes",
                            "can_send_polls",
                            "can_send_other_messages",
                            "can_add_web_page_previews",
                            "can_change_info",
                            "can_invite_users",
                            "can_pin_messages",
                            "can_manage_topics",
                        )
                    },
                }
            )
        member.update(extra)
        return member

    def _m_get_chat_member(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._chat_id(params)
        user_id = self._int_param(params, "user_id", None)
        if user_id is None:
            raise bad_request("user_id is empty")
        return self._member(chat_id, user_id)

    def _m_get_chat_administrators(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._chat_id(params)
        if chat_id > 0:
            raise bad_request("there are no administrators in the private chat")
        admins = [
            _copy_json(m)
            for (cid, _uid), m in self._members.items()
            if cid == chat_id and m["status"] in ("creator", "administrator")
        ]
        if not any(m["user"]["id"] == self.bot_id for m in admins):
            bot_member = self._member(chat_id, self.bot_id)
            if bot_member["status"] in ("creator", "administrator"):
                admins.append(bot_member)
        return admins

    def _m_get_chat_member_count(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        chat_id = self._chat_id(params)
        if chat_id > 0:
            return 2
        present = {
            uid
            for (cid, uid), m in self._members.items()
            if cid == chat_id and m["status"] not in ("left", "kicked")
        }
        present.add(self.bot_id)
        return len(present)

    def _m_get_file(self, params: dict[str, Any], files: dict[str, UploadedFile]) -> Any:
        file_id = params.get("file_id")
        stored = self._files.get(str(file_id))
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    # -- test-side state control ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        description: str = "Bad Request: injected failure",
        error_code: int = 400,
        *,
        parameters: JSON | None = None,
        times: int = 1,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (matching ``predicate``) fail."""
        with self._lock:
            self._injected_errors.append(
                _InjectedError(method, ApiError(error_code, description, parameters), times, predicate)
            )

    def delay_next(
        self,
        method: str,
        seconds: float,
        *,
        deliver: bool = True,
        times: int = 1,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (matching ``predicate``) only after
        ``seconds``, so that a client with a shorter timeout gives up on them. ``deliver``: a
        late answer, the call was done (the message is there, recorded as a success); else the
        request was lost on its way and nothing was done (recorded with the error ``LOST``)."""
        with self._lock:
            self._injected_delays.append(_InjectedDelay(method, seconds, deliver, times, predicate))

    def block(self, chat_id: int) -> None:
        """Sends to this chat answer 403 (user blocked the bot / bot kicked from group)."""
        with self._lock:
            self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.discard(chat_id)

    def set_chat_member(self, chat_id: int, user: JSON, status: str = "member", **extra: Any) -> JSON:
        """Set what getChatMember answers for (chat, user): creator/administrator/member/
        restricted/left/kicked.  ``extra`` overrides fields (e.g. ``can_delete_messages``)."""
        with self._lock:
            self._users.setdefault(user["id"], _copy_json(user))
            member = self._member_dict(chat_id, user, status, **extra)
            self._members[(chat_id, user["id"])] = member
            return _copy_json(member)

    # -- building Telegram objects --------------------------------------------------------------

    def user(
        self,
        id: int,
        first_name: str = "Test",
        username: str | None = None,
        language_code: str | None = "en",
        *,
        last_name: str | None = None,
        is_bot: bool = False,
    ) -> JSON:
        user: JSON = {"id": id, "is_bot": is_bot, "first_name": first_name}
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        with self._lock:
            self._users[id] = _copy_json(user)
        return user

    def private_chat(self, user: JSON) -> JSON:
        chat: JSON = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        with self._lock:
            self._chats[user["id"]] = _copy_json(chat)
        return chat

    def group_chat(self, chat_id: int, title: str = "Test group") -> JSON:
        chat: JSON = {"id": chat_id, "type": "supergroup", "title": title}
        with self._lock:
            self._chats[chat_id] = _copy_json(chat)
        return chat

    def _resolve_chat(self, chat: JSON | int, from_user: JSON) -> JSON:
        if isinstance(chat, dict):
            with self._lock:
                self._chats[chat["id"]] = _copy_json(chat)
            return _copy_json(chat)
        if chat == from_user["id"]:
            return self.private_chat(from_user)
        with self._lock:
            return self._chat_for(chat)

    def _user_message(self, from_user: JSON, chat: JSON | int) -> JSON:
        with self._lock:
            self._users.setdefault(from_user["id"], _copy_json(from_user))
        chat_dict = self._resolve_chat(chat, from_user)
        return {
            "message_id": self._alloc_message_id(chat_dict["id"]),
            "from": _copy_json(from_user),
            "chat": chat_dict,
            "date": int(time.time()),
        }

    def _queue_message(self, msg: JSON, update_field: str = "message") -> JSON:
        with self._lock:
            self.user_messages[(msg["chat"]["id"], msg["message_id"])] = _copy_json(msg)
        return self.inject({update_field: msg})

    # -- injecting updates ----------------------------------------------------------------------

    def inject(self, update: JSON) -> JSON:
        """Queue a raw update (``update_id`` is assigned if missing).  Returns it."""
        with self._cond:
            update = _copy_json(update)
            if "update_id" in update:
                self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
            else:
                update = {"update_id": self._next_update_id, **update}
                self._next_update_id += 1
            self._updates.append(update)
            self._last_activity = time.monotonic()
            self._cond.notify_all()
            return _copy_json(update)

    def send_message(
        self,
        from_user: JSON,
        chat: JSON | int,
        text: str,
        reply_to_message_id: int | None = None,
        **extra: Any,
    ) -> JSON:
        """A user writes ``text``.  A leading ``/command`` gets a ``bot_command`` entity."""
        msg = self._user_message(from_user, chat)
        msg["text"] = text
        if text.startswith("/"):
            word = text.split(maxsplit=1)[0] if text.strip() else text
            if len(word) > 1:
                msg["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(word)}]
        if reply_to_message_id is not None:
            with self._lock:
                target = self._find_message(msg["chat"]["id"], reply_to_message_id)
            if target is not None:
                msg["reply_to_message"] = self._strip_reply(target)
        msg.update(extra)
        return self._queue_message(msg)

    send_command = send_message

    def send_photo(
        self,
        from_user: JSON,
        chat: JSON | int,
        caption: str | None = None,
        file_id: str | None = None,
        *,
        content: bytes = b"\xff\xd8\xff\xe0fake-jpeg",
        **extra: Any,
    ) -> JSON:
        msg = self._user_message(from_user, chat)
        msg["photo"] = self._make_media("photo", content, None, None, file_id)
        if caption is not None:
            msg["caption"] = caption
        msg.update(extra)
        return self._queue_message(msg)

    def send_document(
        self,
        from_user: JSON,
        chat: JSON | int,
        file_name: str = "a.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
        file_id: str | None = None,
        *,
        content: bytes = b"%PDF-1.4\n% fake document\n",
        **extra: Any,
    ) -> JSON:
        msg = self._user_message(from_user, chat)
        msg["document"] = self._make_media("document", content, file_name, mime_type, file_id)
        if caption is not None:
            msg["caption"] = caption
        msg.update(extra)
        return self._queue_message(msg)

    def send_contact(
        self,
        from_user: JSON,
        chat: JSON | int,
        phone_number: str,
        first_name: str,
        last_name: str | None = None,
        user_id: int | None = None,
        **extra: Any,
    ) -> JSON:
        """A user shares a contact (``user_id``: whose it is; the keyboard's "share my phone
        number" button shares the sender's own)."""
        msg = self._user_message(from_user, chat)
        contact: JSON = {"phone_number": phone_number, "first_name": first_name}
        if last_name is not None:
            contact["last_name"] = last_name
        if user_id is not None:
            contact["user_id"] = user_id
        msg["contact"] = contact
        msg.update(extra)
        return self._queue_message(msg)

    def forward_message(
        self,
        from_user: JSON,
        chat: JSON | int,
        text: str,
        origin_date: int,
        origin_sender: JSON | None = None,
        origin_sender_name: str | None = None,
        **extra: Any,
    ) -> JSON:
        """A user forwards a text message from ``origin_sender`` (or a hidden user)."""
        msg = self._user_message(from_user, chat)
        msg["text"] = text
        if origin_sender is not None:
            msg["forward_origin"] = {
                "type": "user",
                "date": origin_date,
                "sender_user": _copy_json(origin_sender),
            }
            msg["forward_from"] = _copy_json(origin_sender)
        else:
            name = origin_sender_name or "Hidden User"
            msg["forward_origin"] = {
                "type": "hidden_user",
                "date": origin_date,
                "sender_user_name": name,
            }
            msg["forward_sender_name"] = name
        msg["forward_date"] = origin_date
        msg.update(extra)
        return self._queue_message(msg)

    def press(self, from_user: JSON, chat_id: int, message_id: int, data: str) -> JSON:
        """A user presses an inline button with ``data`` on bot message (chat_id, message_id)."""
        with self._lock:
            msg = self.messages.get((chat_id, message_id))
            if msg is None:
                raise KeyError(f"no bot message ({chat_id}, {message_id}) to press a button on")
            query_id = str(4_000_000_000_000_000 + next(self._seq) * 7919)
            self._pending_callbacks.add(query_id)
            self._users.setdefault(from_user["id"], _copy_json(from_user))
            query = {
                "id": query_id,
                "from": _copy_json(from_user),
                "message": self._public(msg),
                "chat_instance": str(-(abs(chat_id) * 1_000_003 % 10**18) - 1),
                "data": data,
            }
        return self.inject({"callback_query": query})

    # -- inspection -----------------------------------------------------------------------------

    def mark(self) -> int:
        with self._lock:
            return len(self.calls)

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def clear_calls(self) -> None:
        """Forget recorded calls (indices returned by mark() become meaningless)."""
        with self._lock:
            self.calls.clear()

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of successful sendMessage/editMessageText calls, in order (raw, as sent)."""
        with self._lock:
            calls = list(self.calls)
        out: list[str] = []
        for c in calls:
            if c.method not in ("sendMessage", "editMessageText") or not c.ok:
                continue
            if chat_id is not None and c.params.get("chat_id") != chat_id:
                continue
            out.append(str(c.params.get("text")))
        return out

    def last_message(self, chat_id: int) -> JSON:
        """The newest message the bot sent to ``chat_id`` that still exists (as edited)."""
        with self._lock:
            keys = [k for k in self.messages if k[0] == chat_id]
            if not keys:
                raise AssertionError(f"the bot has no message in chat {chat_id}")
            return _copy_json(self.messages[max(keys)])

    @staticmethod
    def buttons(message: JSON) -> list[tuple[str, str | None]]:
        """Flatten a message's inline keyboard into (text, callback_data) tuples."""
        keyboard = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        return [(b.get("text"), b.get("callback_data")) for row in keyboard for b in row]

    def dump_calls(self, last: int = 20) -> str:
        with self._lock:
            indexed = [(i, c) for i, c in enumerate(self.calls) if c.method != "getUpdates"]
            polls = len(self.calls) - len(indexed)
            errors = list(self.server_errors)
        lines = [f"  [{i}] {c.short()}" for i, c in indexed[-last:]]
        head = f"last {len(lines)} calls (getUpdates omitted: {polls} polls):"
        if errors:
            lines.append(f"  !! {len(errors)} internal errors in the fake, last:\n{errors[-1]}")
        return "\n".join([head, *lines]) if lines else head + " none"

    # -- async waiting helpers ------------------------------------------------------------------

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] = lambda call: True,
        timeout: float = 10.0,
        after: int | None = None,
        *,
        ok: bool | None = None,
    ) -> Call:
        """First call of ``method`` with index >= ``after`` satisfying ``predicate``.

        Failed calls match too unless ``ok`` is given (True: only successes, False: only errors).
        """
        index = after or 0
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                fresh = self.calls[index:]
            for call in fresh:
                if call.method != method or (ok is not None and call.ok != ok):
                    continue
                if predicate(call):
                    return call
            index += len(fresh)
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no {method} call (after index {after or 0}) matched within {timeout}s; "
                    + self.dump_calls()
                )
            await asyncio.sleep(0.02)

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until every queued update was fetched, no request other than getUpdates is in
        progress, and nothing happened for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                idle = (
                    self._in_flight == 0
                    and self._max_fetched_update_id >= self._next_update_id - 1
                    and time.monotonic() - self._last_activity >= quiet
                )
            if idle:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"bot not idle after {timeout}s; " + self.dump_calls())
            await asyncio.sleep(0.02)

    async def wait_updates_consumed(self, timeout: float = 10.0) -> None:
        """Wait until the bot has fetched every update queued so far."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                target = self._next_update_id - 1
                done = self._max_fetched_update_id >= target
                pending = [u["update_id"] for u in self._updates]
            if done:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"updates up to {target} not fetched within {timeout}s "
                    f"(unconfirmed: {pending}); " + self.dump_calls()
                )
            await asyncio.sleep(0.02)
