"""The project's one HTTP entry point: Telegram's webhook and ``/healthz`` (later the Facebook
webhook and the public figures), on aiohttp's web server.

A webhook request is answered 200 only once its update is committed to the inbox; without
Telegram's secret token (``X-Telegram-Bot-Api-Secret-Token``, compared in constant time) it gets
403 and changes nothing. Telegram sends an update again until it gets a 200, and the inbox keeps
one copy of each, so a crash between storing and answering costs nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from telegram import Update

from bot.attempts import describe

if TYPE_CHECKING:
    from bot.service import Runner

log = logging.getLogger("bot.web")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # an update is a few kB; a file is sent by id, never in the update


class WebServer:
    def __init__(self, runner: Runner) -> None:
        webhook = runner.settings.webhook
        assert webhook is not None
        self.runner = runner
        self.settings = webhook
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_post(webhook.path, self.telegram)
        self.app.router.add_get("/healthz", self.health)
        self._site_runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._site_runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._site_runner.setup()
        site = web.TCPSite(self._site_runner, self.settings.listen, self.settings.port)
        await site.start()
        await self.runner.app.bot.set_webhook(
            self.settings.url, secret_token=self.settings.secret_token,
            max_connections=self.settings.max_connections,
            allowed_updates=_allowed_updates(), drop_pending_updates=False)
        log.info("webhook: listening on %s:%d for %s", self.settings.listen, self.settings.port,
                 self.settings.path)

    @property
    def port(self) -> int:
        """The port actually bound (the config's, or the one the system chose for port 0)."""
        assert self._site_runner is not None
        for address in self._site_runner.addresses:
            return int(address[1])
        return self.settings.port

    async def stop(self) -> None:
        # The webhook stays set: Telegram keeps the updates that come meanwhile for the next start.
        if self._site_runner is not None:
            await self._site_runner.cleanup()
            self._site_runner = None

    async def telegram(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.settings.secret_token.encode()):
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
            update = Update.de_json(data, self.runner.app.bot)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                raise ValueError("no update_id")
        except Exception:  # not an update: Telegram sends none such; nothing to store or retry
            return web.Response(status=400, text="not an update")
        try:
            await self.runner.store([update])
        except Exception as exc:  # not stored: no 200, so Telegram sends it again
            log.error("webhook update not stored (%s)", describe(exc))
            return web.Response(status=503, text="try again")
        return web.Response(status=200, text="ok")

    async def health(self, request: web.Request) -> web.Response:
        report = await self.runner.health()
        return web.json_response(report, status=200 if report["ok"] else 503)


def _allowed_updates() -> list[str]:
    from bot.service import ALLOWED_UPDATES

    return ALLOWED_UPDATES
