"""The project's one HTTP entry point: Telegram's webhook (``casebot run --webhook``), the
Facebook page's webhook (``[facebook]``: bot/messenger/webhook.py) and ``/healthz`` (later the
public figures), on aiohttp's web server. It runs when either webhook is configured, and listens
where ``[http]`` says (else ``[webhook]``'s ``listen`` and ``port``).

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
    def __init__(self, runner: Runner, *, telegram: bool = True) -> None:
        self.runner = runner
        self.webhook = runner.settings.webhook if telegram else None
        assert self.webhook is not None or not telegram
        self.bind = runner.settings.http_server
        self.app = web.Application(client_max_size=MAX_BODY)
        if self.webhook is not None:
            self.app.router.add_post(self.webhook.path, self.telegram)
        facebook = runner.settings.facebook
        if facebook is not None:
            from bot.messenger.webhook import PageWebhook

            assert runner.facebook_secrets is not None
            PageWebhook(facebook, runner.facebook_secrets.app_secret, runner.store_items,
                        runner.clock).routes(self.app)
        self.app.router.add_get("/healthz", self.health)
        self._site_runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._site_runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._site_runner.setup()
        site = web.TCPSite(self._site_runner, self.bind.listen, self.bind.port)
        await site.start()
        paths = []
        if self.webhook is not None:
            await self.runner.app.bot.set_webhook(
                self.webhook.url, secret_token=self.webhook.secret_token,
                max_connections=self.webhook.max_connections,
                allowed_updates=_allowed_updates(), drop_pending_updates=False)
            paths.append(self.webhook.path)
        if self.runner.settings.facebook is not None:
            paths.append(self.runner.settings.facebook.path)
        log.info("http: listening on %s:%d for %s", self.bind.listen, self.port, ", ".join(paths))

    @property
    def port(self) -> int:
        """The port actually bound (the config's, or the one the system chose for port 0)."""
        assert self._site_runner is not None
        for address in self._site_runner.addresses:
            return int(address[1])
        return self.bind.port

    async def stop(self) -> None:
        # The webhook stays set: Telegram keeps the updates that come meanwhile for the next start.
        if self._site_runner is not None:
            await self._site_runner.cleanup()
            self._site_runner = None

    async def telegram(self, request: web.Request) -> web.Response:
        assert self.webhook is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook.secret_token.encode()):
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
