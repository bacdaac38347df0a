"""The Graph API's Send API, as the Messenger sender uses it: one message to a person (by their
page-scoped id) or one private reply to a comment, and Meta's errors sorted by what to do.

The page token travels in the ``Authorization`` header, never in a URL: an error or a log line
that names the URL cannot show it. Graph's error messages do not repeat it either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.config import FacebookSettings, Secret

TEXT_LIMIT = 2000          # characters in a Messenger text
QUICK_REPLIES = 13         # at most this many quick replies under a message
TITLE_LIMIT = 20           # characters in a quick reply's title
PAYLOAD_LIMIT = 1000       # characters in a quick reply's payload
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)

TOKEN_REFUSED = 190        # the page token expired or was revoked
OUTSIDE_WINDOW = (10, 2018278)  # code 10, subcode 2018278: outside the 24-hour window
USER_UNAVAILABLE = 551     # the person cannot be reached (blocked the page, account gone)
RATE_LIMITS = frozenset({4, 17, 32, 613})  # app, user, page, and calls-in-a-period limits


class GraphError(Exception):
    """Graph refused or failed a call: ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, code: int = 0, subcode: int = 0, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.subcode = subcode
        self.message = message

    @property
    def reason(self) -> str:
        """One line for the outbox row (Graph's own words, which hold no token)."""
        if self.status == 0:
            return f"Facebook unreachable: {self.message}"[:300]
        code = f" (code {self.code}" + (f"/{self.subcode}" if self.subcode else "") + ")" if self.code else ""
        return f"Facebook {self.status}{code}: {self.message}"[:300]

    @property
    def token_refused(self) -> bool:
        return self.code == TOKEN_REFUSED

    @property
    def outside_window(self) -> bool:
        return (self.code, self.subcode) == OUTSIDE_WINDOW

    @property
    def unavailable(self) -> bool:
        return self.code == USER_UNAVAILABLE

    @property
    def rate_limited(self) -> bool:
        return self.code in RATE_LIMITS

    @property
    def transient(self) -> bool:
        """Worth trying again later: no answer, a server error, or Graph saying so."""
        return self.status == 0 or self.status >= 500 or self.code in (1, 2)


@dataclass(frozen=True)
class Sent:
    recipient_id: str  # the person's page-scoped id (for a private reply: learnt here)
    message_id: str


def cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def message_body(recipient: dict[str, str], text: str,
                 quick_replies: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The Send API's body: a plain text (cut to Messenger's limit) in answer to the person
    (``messaging_type`` RESPONSE: within the 24-hour window), with quick replies."""
    message: dict[str, Any] = {"text": cut(text, TEXT_LIMIT)}
    if quick_replies:
        message["quick_replies"] = [
            {"content_type": "text", "title": cut(title, TITLE_LIMIT), "payload": payload[:PAYLOAD_LIMIT]}
            for title, payload in quick_replies[:QUICK_REPLIES]]
    return {"recipient": recipient, "messaging_type": "RESPONSE", "message": message}


class Graph:
    def __init__(self, settings: FacebookSettings, token: Secret) -> None:
        self.settings = settings
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"{self.settings.graph_url}/{self.settings.api_version}/me/messages"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, recipient: dict[str, str], text: str,
                   quick_replies: list[tuple[str, str]] | None = None) -> Sent:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        try:
            async with self._session.post(self.url, json=message_body(recipient, text, quick_replies),
                                          headers=headers) as response:
                status = response.status
                raw = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:  # no answer: its type only
            raise GraphError(0, message=type(exc).__name__) from None
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status == 200 and "error" not in data:
            return Sent(str(data.get("recipient_id", "")), str(data.get("message_id", "")))
        error: dict[str, Any] = data["error"] if isinstance(data.get("error"), dict) else {}
        code, subcode = error.get("code"), error.get("error_subcode")
        raise GraphError(status, code if isinstance(code, int) else 0,
                         subcode if isinstance(subcode, int) else 0,
                         str(error.get("message") or f"HTTP {status}"))
