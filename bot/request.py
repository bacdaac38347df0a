"""python-telegram-bot's requests over aiohttp instead of httpx.

Measured in bench/ (button presses in a burst): the same bot makes about twice as many updates a
second with this class. httpx's stack (httpcore's connection pool over anyio) costs far more CPU
per Bot API call: on every request the pool checks each of its connections for expiry, and each
check asks anyio for the socket's attributes (a ``getpeername`` system call) and polls the socket
(encode/httpcore pull requests #924 and #928). aiohttp, which aiogram also uses, parses HTTP in
C and keeps its pool without such scans.

What it offers an operator is what PTB's own ``HTTPXRequest`` offers, with the same defaults:

- **A proxy** (``proxy``): ``http://``, ``https://`` (TLS to the proxy itself, checked against the
  system's CAs or ``SSL_CERT_FILE``), ``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://``;
  credentials in the URL (``socks5://user:password@host:1080``, percent-encoded). It goes through
  aiohttp-socks: every connection is a tunnel (``CONNECT`` for an HTTP proxy), and a SOCKS5 or
  SOCKS4a proxy resolves the Bot API's host name itself. Without one, ``HTTPS_PROXY``,
  ``HTTP_PROXY`` and ``NO_PROXY`` from the environment are used (HTTP proxies only, as with
  httpx), read once per host and session, as httpx reads them once per client (aiohttp's own
  ``trust_env`` reads them again in a thread on every request: about half of this class's CPU
  per call).
- **Timeouts** (seconds; ``None`` waits for ever; a value given to a call wins):
  ``connect`` bounds making a connection: name lookup, TCP, the proxy's handshake and TLS.
  ``read`` bounds each wait for more of the answer, from when the request is sent (aiohttp's
  ``sock_read``). ``write`` bounds each wait for the connection to take more of the body, in
  steps of 64 KiB as httpx writes, and finally for the whole body to be taken: an upload's
  (``media_write_timeout``, 20 s, for a request with files). A request without files is form
  fields of a few KiB, which aiohttp hands to the socket without waiting (it waits only when more
  than 64 KiB are queued), so there is no wait for ``write_timeout`` to bound. ``pool`` bounds the
  wait for one of ``connection_pool_size`` connections, ending in PTB's "Pool timeout" error.
- **Errors** as PTB's: ``TimedOut`` for every timeout (a proxy's too), ``NetworkError`` for the
  rest, so the bot handles them the same way. Their messages never hold the bot token (part of
  every URL) nor the proxy's credentials; they are not chained to aiohttp's exception, whose
  message may hold the URL, so a logged traceback holds neither.

Not offered: HTTP/2 (aiohttp speaks HTTP/1.1, as PTB does by default), ``socket_options`` and
``httpx_kwargs``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

import aiohttp
import aiohttp_socks
from aiohttp import payload as aiohttp_payload
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import get_env_proxy_for_url
from python_socks import ProxyType
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData
from yarl import URL

from bot.config import Proxy, parse_proxy

# A token in a URL (base_url + token: ".../bot<token>/<method>", ".../file/bot<token>/<path>"),
# and anything shaped like a token (digits, a colon, 20 or more letters), wherever it stands.
_TOKEN_IN_URL = re.compile(r"/(?:file/)?bot[^/\s]+")
_TOKEN = re.compile(r"\b\d{3,}:[A-Za-z0-9_-]{20,}")
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]*@")

POOL_TIMEOUT_MESSAGE = (  # PTB's own words
    "Pool timeout: All connections in the connection pool are occupied. Request was *not* sent to "
    "Telegram. Consider adjusting the connection pool size or the pool timeout."
)
_CHUNK = 0x10000  # httpx writes an upload in chunks of 64 KiB; aiohttp waits past 64 KiB queued


def _scrub(text: str, *secrets: str) -> str:
    """``text`` without the token, a URL's credentials or any of ``secrets``."""
    text = _USERINFO.sub(r"\1***@", _TOKEN.sub("…", _TOKEN_IN_URL.sub("/bot…", text)))
    for secret in secrets:
        if len(secret) >= 3:  # shorter would blot out ordinary words and guard little
            text = text.replace(secret, "***")
    return text


def _value(value: object, default: float | None) -> float | None:
    """A timeout passed to a call, else ours (PTB passes ``DEFAULT_NONE`` for "not given")."""
    if value is BaseRequest.DEFAULT_NONE:
        return default
    return None if value is None else float(value)  # type: ignore[arg-type]


# scheme (bot.config.PROXY_SCHEMES) → (kind, does the proxy resolve host names, TLS to the proxy)
_PROXY_KINDS: dict[str, tuple[ProxyType, bool, bool]] = {
    "http": (ProxyType.HTTP, False, False),
    "https": (ProxyType.HTTP, False, True),
    "socks4": (ProxyType.SOCKS4, False, False),
    "socks4a": (ProxyType.SOCKS4, True, False),
    "socks5": (ProxyType.SOCKS5, True, False),
    "socks5h": (ProxyType.SOCKS5, True, False),
}


class _WriteTimeout(TimeoutError):
    pass


class _TimedWriter:
    """aiohttp's stream writer, each of whose waits for the connection is bounded."""

    def __init__(self, writer: AbstractStreamWriter, timeout: float) -> None:
        self._writer = writer
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)

    async def write(self, chunk: Any, *args: Any, **kwargs: Any) -> None:
        for start in range(0, max(len(chunk), 1), _CHUNK):
            await self._bounded(self._writer.write(chunk[start:start + _CHUNK], *args, **kwargs))

    async def drain(self) -> None:
        await self._bounded(self._writer.drain())

    async def _bounded(self, step: Any) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await step
        except TimeoutError:
            raise _WriteTimeout(
                f"Timed out sending the request's body (write timeout {self._timeout} s)"
            ) from None


class _Upload(aiohttp.MultipartWriter):
    """multipart/form-data as aiohttp's ``FormData`` makes it, sent within the write timeout."""

    def __init__(self, write_timeout: float | None) -> None:
        super().__init__("form-data")
        self._write_timeout = write_timeout

    def add(self, name: str, value: Any, filename: str | None = None,
            content_type: str | None = None) -> None:
        if content_type is None:
            part = aiohttp_payload.get_payload(value, headers={})
        else:
            part = aiohttp_payload.get_payload(value, content_type=content_type,
                                               headers={"Content-Type": content_type})
        if filename is None:
            part.set_content_disposition("form-data", name=name)
        else:
            part.set_content_disposition("form-data", name=name, filename=filename)
        part.headers.popall("Content-Length", None)
        self.append_payload(part)

    async def write(self, writer: AbstractStreamWriter, close_boundary: bool = True) -> None:
        if self._write_timeout is None:
            await super().write(writer, close_boundary)
            return
        timed = _TimedWriter(writer, self._write_timeout)
        await super().write(timed, close_boundary)  # type: ignore[arg-type]
        await timed.drain()  # all of it taken before the read timeout starts


class AiohttpRequest(BaseRequest):
    """A drop-in for PTB's ``HTTPXRequest`` over aiohttp, with its arguments and defaults."""

    def __init__(
        self, connection_pool_size: int = 256, *, read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0, proxy: str | Proxy | None = None,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._connections = connection_pool_size
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._pool = pool_timeout
        self._media_write = media_write_timeout
        self._proxy = parse_proxy(proxy) if isinstance(proxy, str) else proxy
        self._secrets = tuple(filter(None, (self._proxy.username, self._proxy.password))
                              ) if self._proxy else ()
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None
        self._env_proxies: dict[str, URL | None] = {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(connection_pool_size={self._connections}, "
                f"proxy={str(self._proxy) if self._proxy else None!r})")

    @property
    def read_timeout(self) -> float | None:
        return self._read

    @property
    def proxy(self) -> Proxy | None:
        return self._proxy

    async def initialize(self) -> None:
        if self._session is not None and not self._session.closed:
            return
        # The pool's limit is ours (the semaphore), so that waiting for it has its own timeout.
        connector: aiohttp.TCPConnector
        if self._proxy is None:
            connector = aiohttp.TCPConnector(limit=0)
        else:
            kind, remote_dns, tls = _PROXY_KINDS[self._proxy.scheme]
            connector = aiohttp_socks.ProxyConnector(
                proxy_type=kind, host=self._proxy.host, port=self._proxy.port,
                username=self._proxy.username, password=self._proxy.password, rdns=remote_dns,
                proxy_ssl=ssl.create_default_context() if tls else None, limit=0,
            )
        self._session = aiohttp.ClientSession(
            connector=connector, headers={"User-Agent": self.USER_AGENT},
            trust_env=False,  # the environment's proxies are read once per host (_env_proxy)
        )
        self._slots = asyncio.Semaphore(self._connections)
        self._env_proxies.clear()

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _env_proxy(self, url: str) -> URL | None:
        """The environment's proxy for ``url``'s scheme and host (none when one is configured)."""
        if self._proxy is not None:
            return None
        end = url.find("/", url.find("//") + 2)
        origin = url if end < 0 else url[:end]
        if origin in self._env_proxies:
            return self._env_proxies[origin]
        try:
            proxy, auth = get_env_proxy_for_url(URL(url))
        except LookupError:
            found = None
        else:
            found = proxy if auth is None else proxy.with_user(auth.login).with_password(
                auth.password)
        self._env_proxies[origin] = found
        return found

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session, slots = self._session, self._slots
        if session is None or slots is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        data: Any = request_data.json_parameters if request_data else None
        if files:
            form = _Upload(_value(write_timeout, self._media_write))
            for name, value in (data or {}).items():
                form.add(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add(name, content, filename, mimetype)
            data = form
        connect = _value(connect_timeout, self._connect)
        timeout = aiohttp.ClientTimeout(
            sock_read=_value(read_timeout, self._read), sock_connect=connect, connect=connect,
        )
        try:
            if slots.locked():
                try:
                    async with asyncio.timeout(_value(pool_timeout, self._pool)):
                        await slots.acquire()
                except TimeoutError:
                    raise TimedOut(POOL_TIMEOUT_MESSAGE) from None
            else:
                await slots.acquire()
            try:
                async with session.request(
                    method, url, data=data, timeout=timeout, proxy=self._env_proxy(url),
                ) as response:
                    return response.status, await response.read()
            finally:
                slots.release()
        except TelegramError:
            raise
        # Not chained ("from None"): aiohttp's message may hold the URL, and so the token.
        except (TimeoutError, aiohttp_socks.ProxyTimeoutError) as err:  # aiohttp's are these too
            raise TimedOut(self._message(err)) from None
        except (aiohttp.ClientError, aiohttp_socks.ProxyError, aiohttp_socks.ProxyConnectionError,
                OSError) as err:
            raise NetworkError(self._message(err)) from None
        except Exception as err:  # as PTB's BaseRequest would, but without the token
            raise NetworkError(self._message(err, "Unknown error in HTTP implementation: ")) from None

    def _message(self, err: BaseException, prefix: str = "") -> str:
        if isinstance(err, _WriteTimeout):
            return str(err)
        module = type(err).__module__.partition(".")[0]
        name = type(err).__name__ if module == "builtins" else f"{module}.{type(err).__name__}"
        return _scrub(f"{prefix}{name}: {err}", *self._secrets)
