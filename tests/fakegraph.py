"""A fake Facebook Graph API and page users, for end-to-end tests of the page's channel.

It plays both sides of Meta, from Meta's documented payloads and answers:

- **The Send API** (``POST /vXX.X/me/messages``, on 127.0.0.1 with aiohttp): it checks the page
  token (the ``Authorization: Bearer`` header, or ``access_token``), the body's shape (one
  recipient, ``id`` or ``comment_id``; ``messaging_type``; a text of at most 2000 characters;
  at most 13 quick replies with titles of at most 20 characters), and **the 24-hour window
  itself**: it knows when each person last wrote, because tests make people write through it.
  A private reply (``recipient.comment_id``) goes once per comment, within 7 days, and answers
  with the commenter's page-scoped id. It records what it delivered (``delivered``) and what it
  refused (``refused``). Errors can be injected: an expired token (190), outside the window
  (10/2018278), a rate limit (613), a person unavailable (551), a server error (500).
- **The webhook's sender**: ``user_message``, ``quick_reply``, ``comment`` build Meta's webhook
  JSON, sign it with the app secret (``X-Hub-Signature-256``) and POST it to the bot's webhook,
  as Meta does; ``post`` sends any body with any signature (forgeries).

Times come from the tests' clock (the harness's), so the window moves when a test moves it.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from bot.config import FacebookSecrets, Secret

JSON = dict[str, Any]
WINDOW = timedelta(hours=24)
PRIVATE_REPLY_DAYS = 7
VERSION = re.compile(r"v\d+\.\d+")

# Meta's documented error answers (Graph API "Handling errors", Messenger Platform error codes).
ERRORS: dict[str, tuple[int, JSON]] = {
    "expired_token": (400, {"message": "Error validating access token: Session has expired on "
                                       "Tuesday, 01-Jan-30 00:00:00 PST.", "type": "OAuthException",
                            "code": 190, "error_subcode": 463}),
    "invalid_token": (400, {"message": "Invalid OAuth access token - Cannot parse access token",
                            "type": "OAuthException", "code": 190}),
    "outside_window": (400, {"message": "(#10) This message is sent outside of allowed window.",
                             "type": "OAuthException", "code": 10, "error_subcode": 2018278}),
    "rate_limit": (400, {"message": "(#613) Calls to this api have exceeded the rate limit.",
                         "type": "OAuthException", "code": 613}),
    "unavailable": (400, {"message": "(#551) This person isn't available right now.",
                          "type": "OAuthException", "code": 551, "error_subcode": 1545041}),
    "server": (500, {"message": "An unexpected error has occurred. Please retry your request later.",
                     "type": "OAuthException", "is_transient": True, "code": 2}),
    "no_user": (400, {"message": "(#100) No matching user found", "type": "OAuthException",
                      "code": 100, "error_subcode": 2018001}),
    "replied": (400, {"message": "(#10900) Activity already replied to", "type": "OAuthException",
                      "code": 10900}),
    "reply_too_late": (400, {"message": "(#10903) This activity can't be replied to",
                             "type": "OAuthException", "code": 10903}),
    "bad_request": (400, {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}),
}


@dataclass
class Delivered:
    """A message the page sent: to a person (``psid``), perhaps as a comment's private reply."""

    psid: str
    text: str
    quick_replies: list[JSON]
    messaging_type: str
    comment_id: str | None
    at: datetime

    def payloads(self) -> list[str]:
        return [str(q.get("payload")) for q in self.quick_replies]


@dataclass
class Comment:
    id: str
    post_id: str
    from_id: str
    psid: str  # the page-scoped id a private reply reaches
    at: datetime
    replied: bool = False


@dataclass
class FakeGraph:
    clock: Callable[[], datetime]
    page_id: str = "1000000000001"
    app_secret: str = "app-secret-for-tests"
    page_token: str = "EAAB-page-token-for-tests"
    verify_token: str = "verify-me"
    version: str = "v21.0"
    webhook_url: str = ""  # the bot's webhook, once it runs (``attach``)
    delivered: list[Delivered] = field(default_factory=list)
    refused: list[tuple[str, JSON]] = field(default_factory=list)  # (error key, request body)
    last_wrote: dict[str, datetime] = field(default_factory=dict)  # psid: their last message
    comments: dict[str, Comment] = field(default_factory=dict)
    token_expired: bool = False
    calls: int = 0

    def __post_init__(self) -> None:
        self._errors: list[str] = []
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._session: aiohttp.ClientSession | None = None

    # --- running ----------------------------------------------------------------------------

    async def start(self) -> FakeGraph:
        app = web.Application()
        app.router.add_post("/{version}/me/messages", self._send)
        app.router.add_post("/{version}/{page}/messages", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeGraph:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def config(self) -> JSON:
        """The ``[facebook]`` and ``[http]`` tables that point the bot at this fake."""
        return {"facebook": {"page_id": self.page_id, "verify_token": self.verify_token,
                             "graph_url": self.url, "api_version": self.version},
                "http": {"port": 0}}

    def secrets(self) -> FacebookSecrets:
        return FacebookSecrets(Secret(self.app_secret), Secret(self.page_token))

    def attach(self, port: int, path: str = "/facebook") -> None:
        self.webhook_url = f"http://127.0.0.1:{port}{path}"

    def fail_next(self, *errors: str) -> None:
        """The next Send API calls answer these errors (keys of ``ERRORS``), in order."""
        for error in errors:
            assert error in ERRORS, error
        self._errors.extend(errors)

    # --- the Send API -----------------------------------------------------------------------

    def _error(self, key: str, body: JSON) -> web.Response:
        self.refused.append((key, body))
        status, error = ERRORS[key]
        return web.json_response({"error": {**error, "fbtrace_id": f"Afake{next(self._ids)}"}},
                                 status=status)

    async def _send(self, request: web.Request) -> web.Response:
        self.calls += 1
        try:
            body = await request.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if not VERSION.fullmatch(request.match_info["version"]):
            return self._error("bad_request", body)
        page = request.match_info.get("page")
        if page is not None and page != self.page_id:
            return self._error("bad_request", body)
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else \
            str(request.query.get("access_token") or body.get("access_token") or "")
        if token != self.page_token:
            return self._error("invalid_token", body)
        if self.token_expired:
            return self._error("expired_token", body)
        if self._errors:
            return self._error(self._errors.pop(0), body)
        problem = _shape(body)
        if problem:
            return self._error("bad_request", {**body, "problem": problem})
        recipient, message = body["recipient"], body["message"]
        now = self.clock()
        if "comment_id" in recipient:
            comment = self.comments.get(str(recipient["comment_id"]))
            if comment is None:
                return self._error("bad_request", body)
            if comment.replied:
                return self._error("replied", body)
            if now - comment.at > timedelta(days=PRIVATE_REPLY_DAYS):
                return self._error("reply_too_late", body)
            comment.replied = True
            psid, comment_id = comment.psid, comment.id
        else:
            psid, comment_id = str(recipient["id"]), None
            wrote = self.last_wrote.get(psid)
            if wrote is None:
                return self._error("no_user", body)
            if body["messaging_type"] == "RESPONSE" and now - wrote >= WINDOW:
                return self._error("outside_window", body)
        self.delivered.append(Delivered(psid, message["text"], list(message.get("quick_replies") or []),
                                        body["messaging_type"], comment_id, now))
        return web.json_response({"recipient_id": psid, "message_id": f"m_fake{next(self._ids)}"})

    def to(self, psid: str) -> list[Delivered]:
        return [d for d in self.delivered if d.psid == psid]

    # --- the webhook (Meta → the bot) -------------------------------------------------------

    def sign(self, body: bytes, secret: str | None = None) -> str:
        key = (secret or self.app_secret).encode()
        return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()

    async def post(self, body: JSON | bytes, signature: str | None = "sign") -> tuple[int, str]:
        """POST a webhook to the bot: signed with the app secret (``"sign"``), with the given
        header, or without any (None)."""
        assert self._session is not None and self.webhook_url, "start the fake and attach the bot"
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "sign":
            headers["X-Hub-Signature-256"] = self.sign(raw)
        elif signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self._session.post(self.webhook_url, data=raw, headers=headers) as response:
            return response.status, await response.text()

    async def verify(self, token: str, challenge: str = "1158201444", mode: str = "subscribe") -> tuple[int, str]:
        """Meta's handshake when the callback URL is saved."""
        assert self._session is not None
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        async with self._session.get(self.webhook_url, params=params) as response:
            return response.status, await response.text()

    def _entry(self, key: str, items: list[JSON]) -> JSON:
        ms = int(self.clock().timestamp() * 1000)
        return {"object": "page", "entry": [{"id": self.page_id, "time": ms, key: items}]}

    def message_event(self, psid: str, text: str = "", *, mid: str | None = None,
                      quick_reply: str | None = None, attachments: list[JSON] | None = None) -> JSON:
        """A person's message to the page, as Meta's webhook carries it (and the fake now knows
        that they wrote: their window opens)."""
        now = self.clock()
        self.last_wrote[psid] = now
        message: JSON = {"mid": mid or f"m_{psid}_{next(self._ids)}"}
        if text:
            message["text"] = text
        if quick_reply is not None:
            message["quick_reply"] = {"payload": quick_reply}
        if attachments:
            message["attachments"] = attachments
        return self._entry("messaging", [{
            "sender": {"id": psid}, "recipient": {"id": self.page_id},
            "timestamp": int(now.timestamp() * 1000), "message": message}])

    async def user_message(self, psid: str, text: str = "", **kwargs: Any) -> tuple[int, str]:
        return await self.post(self.message_event(psid, text, **kwargs))

    async def quick_reply(self, psid: str, payload: str, title: str = "Yes") -> tuple[int, str]:
        return await self.post(self.message_event(psid, title, quick_reply=payload))

    def echo_event(self, psid: str, text: str) -> JSON:
        """The page's own message echoed back (``message_echoes``), a delivery and a read."""
        ms = int(self.clock().timestamp() * 1000)
        return self._entry("messaging", [
            {"sender": {"id": self.page_id}, "recipient": {"id": psid}, "timestamp": ms,
             "message": {"is_echo": True, "app_id": 1517776481860111, "mid": f"m_echo{next(self._ids)}",
                         "text": text}},
            {"sender": {"id": psid}, "recipient": {"id": self.page_id}, "timestamp": ms,
             "delivery": {"mids": ["m_x"], "watermark": ms}},
            {"sender": {"id": psid}, "recipient": {"id": self.page_id}, "timestamp": ms,
             "read": {"watermark": ms}}])

    def comment_event(self, from_id: str, name: str, text: str, *, post: str = "1",
                      comment_id: str | None = None, psid: str | None = None,
                      verb: str = "add") -> JSON:
        """A comment on one of the page's posts (feed webhook); ``psid``: who a private reply
        to it reaches (the commenter's page-scoped id, which the feed does not tell)."""
        now = self.clock()
        post_id = f"{self.page_id}_{post}"
        comment_id = comment_id or f"{post}_{next(self._ids)}"
        self.comments[comment_id] = Comment(comment_id, post_id, from_id, psid or f"psid-of-{from_id}", now)
        return self._entry("changes", [{"field": "feed", "value": {
            "from": {"id": from_id, "name": name},
            "post": {"status_type": "added_photos", "is_published": True, "id": post_id,
                     "updated_time": now.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                     "permalink_url": f"https://www.facebook.com/{post_id}", "promotion_status": "inactive"},
            "message": text, "post_id": post_id, "comment_id": comment_id,
            "created_time": int(now.timestamp()), "item": "comment", "parent_id": post_id,
            "verb": verb}}])

    async def comment(self, from_id: str, name: str, text: str, **kwargs: Any) -> tuple[int, str]:
        return await self.post(self.comment_event(from_id, name, text, **kwargs))


def _shape(body: JSON) -> str:
    """What is wrong with a Send API body (Meta answers 100, Invalid parameter), or ""."""
    recipient, message = body.get("recipient"), body.get("message")
    if not isinstance(recipient, dict) or len(recipient) != 1 or not (
            set(recipient) <= {"id", "comment_id", "post_id", "user_ref"}):
        return "recipient: exactly one of id, comment_id"
    kind = body.get("messaging_type")
    if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        return "messaging_type"
    if kind == "MESSAGE_TAG" and not body.get("tag"):
        return "tag: required with MESSAGE_TAG"
    if not isinstance(message, dict) or not isinstance(message.get("text"), str) or not message["text"]:
        return "message.text"
    if len(message["text"]) > 2000:
        return "message.text: more than 2000 characters"
    replies = message.get("quick_replies", [])
    if not isinstance(replies, list) or len(replies) > 13:
        return "message.quick_replies: at most 13"
    for reply in replies:
        if not isinstance(reply, dict) or reply.get("content_type") != "text":
            return "quick_replies[].content_type"
        title, payload = reply.get("title"), reply.get("payload")
        if not isinstance(title, str) or not title or len(title) > 20:
            return "quick_replies[].title: 1-20 characters"
        if not isinstance(payload, str) or not payload or len(payload) > 1000:
            return "quick_replies[].payload: 1-1000 characters"
    return ""
