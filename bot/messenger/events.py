"""What the page's webhook carries, taken apart: Meta's JSON in, the events worth keeping out.

A ``POST`` from Meta holds ``entry[]``, one per page; each has ``messaging[]`` (Messenger: a
message, a quick reply, a button's postback; also echoes of the page's own messages, deliveries
and reads, which are ignored) and/or ``changes[]`` (the page's feed: a new comment is
``field: feed``, ``item: comment``, ``verb: add``; the page's own comments are ignored). Each
kept event becomes one inbox item, keyed by Meta's own id so that a webhook delivered twice
stores nothing twice: ``fb:m:<mid>`` for a message, ``fb:c:<comment id>`` for a comment.

The parsed form (``Inbound``) is what the inbox stores as the row's payload and what the
Messenger processor (bot/messenger/inbound.py) reads back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from bot.inbox import Item

MESSAGE = "message"
COMMENT = "comment"


@dataclass(frozen=True)
class Attachment:
    type: str  # image, video, audio, file, fallback, …
    url: str


@dataclass(frozen=True)
class Inbound:
    """One event from the page: a Messenger message (``sender`` is the page-scoped id, PSID) or
    a comment on one of the page's posts (``sender`` is the commenter's id in the feed, which is
    not their PSID)."""

    kind: str                   # MESSAGE | COMMENT
    id: str                     # the message's mid, or the comment's id
    sender: str
    at: datetime                # when they wrote (Meta's timestamp)
    text: str = ""
    payload: str = ""           # a quick reply's or a postback's payload
    attachments: tuple[Attachment, ...] = ()
    name: str = ""              # a commenter's name, as the feed gives it
    post_id: str = ""
    parent_id: str = ""         # the comment answered, when it is a reply to one

    @property
    def key(self) -> str:
        return f"fb:{'m' if self.kind == MESSAGE else 'c'}:{self.id}"

    @property
    def chat_key(self) -> str:
        return f"fb:{self.sender}"

    def to_json(self) -> str:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Inbound:
        data = json.loads(text)
        data["at"] = datetime.fromisoformat(data["at"])
        data["attachments"] = tuple(Attachment(**a) for a in data.get("attachments", ()))
        return cls(**data)

    def item(self) -> Item:
        return Item(self.key, self.chat_key, self.to_json())


class NotAnEvent(ValueError):
    """The body is not a page's webhook (Meta sends none such): nothing to store or retry."""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any) -> str:
    """An id as Meta writes it (a string of digits; some old payloads have numbers)."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _when(value: Any, *, millis: bool) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str):  # a feed's created_time may come as ISO text
            try:
                parsed = datetime.fromisoformat(value.replace("+0000", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return None
    try:
        return datetime.fromtimestamp(value / 1000 if millis else value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse(body: bytes, page_id: str, now: datetime) -> list[Inbound]:
    """The events to keep from a webhook's body, in order; ``NotAnEvent`` if it is not one."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotAnEvent("not JSON") from exc
    if not isinstance(data, dict) or data.get("object") != "page" or not isinstance(data.get("entry"), list):
        raise NotAnEvent("not a page's webhook")
    out: list[Inbound] = []
    for entry in data["entry"]:
        if not isinstance(entry, dict):
            continue
        for event in entry.get("messaging") or ():
            if isinstance(event, dict) and (parsed := _messaging(event, page_id, now)) is not None:
                out.append(parsed)
        for change in entry.get("changes") or ():
            if isinstance(change, dict) and (parsed := _comment(change, page_id, now)) is not None:
                out.append(parsed)
    return out


def _messaging(event: dict[str, Any], page_id: str, now: datetime) -> Inbound | None:
    sender = _id(event["sender"].get("id")) if isinstance(event.get("sender"), dict) else ""
    if not sender or sender == page_id:
        return None
    at = min(_when(event.get("timestamp"), millis=True) or now, now)
    message = event.get("message")
    if isinstance(message, dict):
        if message.get("is_echo"):  # the page's own message, echoed back
            return None
        mid = _id(message.get("mid"))
        if not mid:
            return None
        quick = message.get("quick_reply")
        payload = _text(quick.get("payload")) if isinstance(quick, dict) else ""
        attachments = []
        for att in message.get("attachments") or ():
            if not isinstance(att, dict):
                continue
            inner: dict[str, Any] = att["payload"] if isinstance(att.get("payload"), dict) else {}
            url = _text(inner.get("url")) or _text(att.get("url"))
            attachments.append(Attachment(_text(att.get("type")) or "file", url))
        return Inbound(MESSAGE, mid, sender, at, _text(message.get("text")), payload,
                       tuple(attachments))
    postback = event.get("postback")
    if isinstance(postback, dict):  # a button under a template: its payload, like a quick reply
        mid = _id(postback.get("mid")) or f"pb-{sender}-{int(at.timestamp() * 1000)}"
        return Inbound(MESSAGE, mid, sender, at, _text(postback.get("title")),
                       _text(postback.get("payload")))
    return None  # delivery, read, reaction, optin, …: nothing to keep


def _comment(change: dict[str, Any], page_id: str, now: datetime) -> Inbound | None:
    value = change.get("value")
    if change.get("field") != "feed" or not isinstance(value, dict):
        return None
    if value.get("item") != "comment" or value.get("verb") != "add":
        return None
    author: dict[str, Any] = value["from"] if isinstance(value.get("from"), dict) else {}
    sender = _id(author.get("id"))
    comment_id = _id(value.get("comment_id"))
    if not sender or not comment_id or sender == page_id:  # the page's own comment
        return None
    at = min(_when(value.get("created_time"), millis=False) or now, now)
    photo = _text(value.get("photo"))
    attachments = (Attachment("image", photo),) if photo else ()
    text = _text(value.get("message"))
    if not text.strip() and not attachments:
        return None
    post_id = _id(value.get("post_id"))
    parent = _id(value.get("parent_id"))
    return Inbound(COMMENT, comment_id, sender, at, text, "", attachments,
                   name=_text(author.get("name")), post_id=post_id,
                   parent_id=parent if parent and parent != post_id else "")
