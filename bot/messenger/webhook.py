"""The page's webhook on the HTTP server (bot/web.py): Meta's verification handshake and its
signed ``POST``s.

- ``GET`` with ``hub.mode=subscribe`` and the configured ``hub.verify_token`` (compared in
  constant time) is answered with ``hub.challenge``; anything else gets 403.
- A ``POST``'s ``X-Hub-Signature-256`` must be ``sha256=`` and the HMAC-SHA256 of the raw body
  with the app secret; it is checked (``hmac.compare_digest``) before anything is parsed. A bad
  or missing signature gets 403 and changes nothing.
- The events kept (bot/messenger/events.py) are stored in the inbox in one committed
  transaction, and only then is Meta answered 200: Meta sends a webhook again until it gets one,
  and the inbox keeps one copy of each event (its key is Meta's id).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web

from bot.attempts import describe
from bot.config import FacebookSettings, Secret
from bot.inbox import Item
from bot.messenger.events import NotAnEvent, parse

log = logging.getLogger("bot.messenger.webhook")
SIGNATURE_HEADER = "X-Hub-Signature-256"
Store = Callable[[list[Item]], Awaitable[None]]


def signature(secret: str, body: bytes) -> str:
    """The header Meta sends with a body: ``sha256=`` and the hex HMAC-SHA256 of it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PageWebhook:
    def __init__(self, settings: FacebookSettings, app_secret: Secret, store: Store,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self._secret = app_secret
        self.store = store
        self.clock = clock

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.settings.path, self.verify)
        app.router.add_post(self.settings.path, self.receive)

    async def verify(self, request: web.Request) -> web.Response:
        """Meta's subscription handshake (when the callback URL is saved in the app)."""
        mode = request.query.get("hub.mode", "")
        token = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        if mode == "subscribe" and challenge and hmac.compare_digest(
                token.encode(), self.settings.verify_token.encode()):
            log.info("facebook: the webhook's subscription was verified")
            return web.Response(status=200, text=challenge)
        return web.Response(status=403, text="forbidden")

    def signed(self, body: bytes, given: str) -> bool:
        expected = signature(self._secret.reveal(), body)
        return hmac.compare_digest(given.strip().encode(), expected.encode())

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.signed(body, request.headers.get(SIGNATURE_HEADER, "")):
            return web.Response(status=403, text="forbidden")
        try:
            events = parse(body, self.settings.page_id, self.clock())
        except NotAnEvent:
            return web.Response(status=400, text="not a page's webhook")
        if events:
            try:
                await self.store([e.item() for e in events])
            except Exception as exc:  # not stored: no 200, so Meta sends it again
                log.error("facebook events not stored (%s)", describe(exc))
                return web.Response(status=503, text="try again")
        return web.Response(status=200, text="EVENT_RECEIVED")
