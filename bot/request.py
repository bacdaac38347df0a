"""python-telegram-bot's requests over aiohttp instead of httpx.

Measured in bench/ (button presses in a burst): the same bot makes about twice as many updates a
second with this class. httpx's stack (httpcore's connection pool over anyio) costs far more CPU
per Bot API call: on every request the pool checks each of its connections for expiry, and each
check asks anyio for the socket's attributes (a ``getpeername`` system call) and polls the socket
(encode/httpcore pull requests #924 and #928). aiohttp, which aiogram also uses, parses HTTP in
C and keeps its pool without such scans.

Timeouts follow python-telegram-bot's (read, connect and pool; aiohttp has no write timeout).
Network errors become ``NetworkError`` and timeouts ``TimedOut``, as with PTB's own request
class, so the bot handles them the same way. The bot token, which is part of every URL, never
appears in their messages.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_TOKEN_IN_URL = re.compile(r"/(?:file/)?bot[^/\s]+")


def _scrub(text: str) -> str:
    return _TOKEN_IN_URL.sub("/bot…", text)


def _value(value: object, default: float | None) -> float | None:
    """A timeout passed to a call, else ours (PTB passes ``DEFAULT_NONE`` for "not given")."""
    if value is BaseRequest.DEFAULT_NONE:
        return default
    return None if value is None else float(value)  # type: ignore[arg-type]


class AiohttpRequest(BaseRequest):
    """A connection pool of ``connections`` to the Bot API. PTB's defaults for the timeouts."""

    def __init__(
        self, connections: int = 256, *, read_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0, pool_timeout: float | None = 1.0,
        media_read_timeout: float | None = 20.0,
    ) -> None:
        self._connections = connections
        self._read = read_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_read = media_read_timeout  # an upload is answered when it has all arrived
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections),
                headers={"User-Agent": self.USER_AGENT},
                trust_env=True,  # proxies from the environment, as httpx does
            )

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,  # aiohttp has none
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        data: Any = request_data.json_parameters if request_data else None
        if files:
            form = aiohttp.FormData()
            for name, value in (data or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            data = form
        read = _value(read_timeout, self._media_read if files else self._read)
        connect = _value(connect_timeout, self._connect)
        pool = _value(pool_timeout, self._pool)
        timeout = aiohttp.ClientTimeout(
            sock_read=read, sock_connect=connect,
            connect=None if connect is None or pool is None else connect + pool,
        )
        try:
            async with self._session.request(method, url, data=data, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's timeouts are TimeoutErrors too
            raise TimedOut(_scrub(f"aiohttp.{err.__class__.__name__}: {err}")) from err
        except aiohttp.ClientError as err:
            raise NetworkError(_scrub(f"aiohttp.{err.__class__.__name__}: {err}")) from err
