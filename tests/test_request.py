"""bot/request.py: python-telegram-bot over aiohttp does what PTB's own ``HTTPXRequest`` does for
an operator: the same timeouts (connect, read, write, pool), the same error types, uploads, a
proxy (HTTP, HTTPS, SOCKS4, SOCKS5; from the config or the environment), and never a token or a
proxy's credentials in an error. PTB's tests of its request class (tests/request/test_request.py
upstream) mostly mock httpx; here the same behaviours run over real sockets on 127.0.0.1: the fake
Bot API, and a tiny HTTP proxy and SOCKS server written below.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import socket
import ssl
import struct
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
from telegram import InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.app import build_application
from bot.config import PROXY_SCHEMES, ConfigError, Proxy, parse_proxy, parse_settings
from bot.request import _PROXY_KINDS, AiohttpRequest, _scrub
from tests.conftest import config_dict
from tests.fakebotapi import FakeBotAPI

TOKEN = "123456:AAH-secret-token-for-tests_0123456789"
USER, PASSWORD = "casebot-user", "pr0xy-s3cret"
SECRETS = ("AAH-secret", USER, PASSWORD)


# -- helpers --------------------------------------------------------------------------------------


def message(text: str) -> RequestData:
    return RequestData([RequestParameter.from_input("chat_id", 1),
                        RequestParameter.from_input("text", text)])


def document(content: Any, filename: str = "report.xlsx", caption: str = "ពាក្យបណ្ដឹង #12") -> RequestData:
    file = InputFile(content, filename=filename, read_file_handle=not hasattr(content, "read"))
    return RequestData([RequestParameter.from_input("chat_id", 1),
                        RequestParameter.from_input("caption", caption),
                        RequestParameter.from_input("document", file)])


def error_texts(err: BaseException) -> str:
    """All an error shows: its message, its repr, and the traceback a log would print."""
    return "\n".join([str(err), repr(err), *traceback.format_exception(err)])


def assert_no_secret(err: BaseException) -> None:
    shown = error_texts(err)
    for secret in SECRETS:
        assert secret not in shown, shown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(autouse=True)
def _no_unclosed_session() -> Iterator[None]:
    """Every test closes what it opened: aiohttp warns of a session or connector left open."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
        gc.collect()
    assert not [w for w in caught if "Unclosed" in str(w.message)]


@pytest.fixture
def api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def slow_api() -> Iterator[FakeBotAPI]:
    with FakeBotAPI(token=TOKEN, latency=0.3) as fake:
        yield fake


def url_of(api: FakeBotAPI, method: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{api.port}/bot{api.token}/{method}"


# -- tiny servers on 127.0.0.1 --------------------------------------------------------------------


class _Server:
    """An asyncio server on 127.0.0.1 that closes every connection it made when it stops."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._stop = asyncio.Event()
        self.port = 0
        self.requests: list[str] = []  # "POST getMe": the requests that went through a tunnel

    async def __aenter__(self) -> Any:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._ssl)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self._stop.set()
        for writer in list(self._writers):
            writer.close()  # the readers see the end, the handlers return
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 10)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self.serve(reader, writer)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def tunnel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str,
                     port: int, first: bytes = b"") -> None:
        """Connect to host:port and copy both ways (``first`` goes ahead)."""
        target_reader, target_writer = await asyncio.open_connection(host, port)
        self._writers.add(target_writer)

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, data: bytes) -> None:
            try:
                while data:
                    verb, _, rest = data.partition(b" ")
                    if verb in (b"GET", b"POST"):  # the start of a request: note its method
                        path = rest.partition(b" ")[0].decode()
                        self.requests.append(f"{verb.decode()} {path.rsplit('/', 1)[-1]}")
                    dst.write(data)
                    await dst.drain()
                    data = await src.read(65536)
            finally:
                dst.close()

        async def back() -> None:
            try:
                while data := await target_reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        await asyncio.gather(copy(reader, target_writer, first or await reader.read(65536)),
                             back(), return_exceptions=True)


class HttpProxy(_Server):
    """An HTTP proxy: CONNECT tunnels, and requests in absolute form forwarded as they are (the
    fake Bot API reads an absolute URL's path). With ``credentials``, others get 407."""

    def __init__(self, credentials: tuple[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(ssl_context)
        self.credentials = credentials
        self.seen: list[tuple[str, str, str | None]] = []  # (method, target, "user:password")

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        auth = headers.get("proxy-authorization")
        user = base64.b64decode(auth.split()[1]).decode() if auth else None
        self.seen.append((method, target, user))
        if self.credentials is not None and user != ":".join(self.credentials):
            writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"proxy\"\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await self.tunnel(reader, writer, host, int(port))
        else:
            url = urlsplit(target)
            assert url.hostname and url.port
            await self.tunnel(reader, writer, url.hostname, url.port, first=head)


class SocksProxy(_Server):
    """A SOCKS4/4a/5 server (RFC 1928 and 1929: CONNECT, user and password). ``silent``: accepts
    and never answers."""

    def __init__(self, credentials: tuple[str, str] | None = None, silent: bool = False) -> None:
        super().__init__()
        self.credentials = credentials
        self.silent = silent
        self.seen: list[tuple[int, str, int, str | None]] = []  # (version, host, port, user)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.silent:
            await reader.read()  # until the client gives up
            return
        version = (await reader.readexactly(1))[0]
        if version == 4:
            _, port, ip = struct.unpack("!BH4s", await reader.readexactly(7))
            user = (await reader.readuntil(b"\0"))[:-1].decode()
            host = socket.inet_ntoa(ip)
            if ip[:3] == b"\0\0\0" and ip[3]:  # SOCKS4a: the host's name follows
                host = (await reader.readuntil(b"\0"))[:-1].decode()
            self.seen.append((4, host, port, user or None))
            writer.write(struct.pack("!BBH4s", 0, 0x5A, 0, bytes(4)))
            await self.tunnel(reader, writer, host, port)
            return
        methods = await reader.readexactly((await reader.readexactly(1))[0])
        login: str | None = None
        if self.credentials is None:
            writer.write(b"\x05\x00")
        elif 2 not in methods:
            writer.write(b"\x05\xff")
            return
        else:
            writer.write(b"\x05\x02")
            _, length = await reader.readexactly(2)
            login = (await reader.readexactly(length)).decode()
            password = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            if (login, password) != self.credentials:
                writer.write(b"\x01\x01")
                return
            writer.write(b"\x01\x00")
        _, _, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif kind == 3:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        else:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        self.seen.append((5, host, port, login))
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await self.tunnel(reader, writer, host, port)


class Silent(_Server):
    """Accepts a connection and says nothing (a TLS handshake never ends)."""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()


class Stalled(_Server):
    """Reads a request's head, then stops reading: the body can't get through."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.heads += 1
        await self._stop.wait()  # until the test ends


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listening queue is full: a new connection's SYN goes unanswered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(server.getsockname())
        fillers.append(filler)
    yield int(server.getsockname()[1])
    for s in [*fillers, server]:
        s.close()


# -- timeouts ---------------------------------------------------------------------------------------


async def test_a_call_slower_than_the_read_timeout_times_out(slow_api: FakeBotAPI) -> None:
    async with AiohttpRequest(read_timeout=0.05) as request:
        with pytest.raises(TimedOut) as caught:
            await request.post(url_of(slow_api, "sendMessage"), message("hello"))
        answer = await request.post(url_of(slow_api, "sendMessage"), message("hello"),
                                    read_timeout=5)  # the call's own wins
    assert isinstance(answer, dict) and answer["text"] == "hello"
    assert_no_secret(caught.value)


async def test_a_connection_not_made_in_time_times_out(unanswered_port: int) -> None:
    async with AiohttpRequest(connect_timeout=0.2) as request:
        with pytest.raises(TimedOut) as caught:
            await request.post(f"http://127.0.0.1:{unanswered_port}/bot{TOKEN}/getMe")
    assert_no_secret(caught.value)


async def test_the_connect_timeout_covers_the_tls_handshake() -> None:
    async with Silent() as server, AiohttpRequest() as request:
        with pytest.raises(TimedOut) as caught:
            await request.post(f"https://127.0.0.1:{server.port}/bot{TOKEN}/getMe",
                               connect_timeout=0.2)
    assert_no_secret(caught.value)


async def test_a_full_pool_times_out_without_sending(slow_api: FakeBotAPI) -> None:
    async with AiohttpRequest(1, pool_timeout=0.05) as request:
        first = asyncio.create_task(request.post(url_of(slow_api, "sendMessage"), message("one")))
        await asyncio.sleep(0)  # it holds the only connection now
        with pytest.raises(TimedOut, match="Pool timeout") as caught:
            await request.post(url_of(slow_api, "sendMessage"), message("two"))
        assert (await first)["text"] == "one"  # type: ignore[index,call-overload]
    assert [c.params["text"] for c in slow_api.calls_of("sendMessage")] == ["one"]
    assert_no_secret(caught.value)


async def test_without_a_pool_timeout_a_call_waits_for_a_connection(slow_api: FakeBotAPI) -> None:
    async with AiohttpRequest(1, pool_timeout=None) as request:
        answers = await asyncio.gather(*(request.post(url_of(slow_api, "sendMessage"), message(t))
                                         for t in ("one", "two")))
    assert sorted(a["text"] for a in answers) == ["one", "two"]  # type: ignore[index,call-overload]


async def test_an_upload_the_server_does_not_take_times_out_on_writing() -> None:
    body = document(bytes(32 * 2**20))  # more than the sockets' buffers hold
    async with Stalled() as server, AiohttpRequest(read_timeout=None) as request:
        url = f"http://127.0.0.1:{server.port}/bot{TOKEN}/sendDocument"
        with pytest.raises(TimedOut, match=r"write timeout 0\.2 s") as caught:
            async with asyncio.timeout(30):  # not to hang if it never came
                await request.post(url, body, write_timeout=0.2)
    assert server.heads == 1
    assert_no_secret(caught.value)


async def test_an_upload_has_the_media_write_timeout_unless_the_call_gives_one() -> None:
    body = document(bytes(32 * 2**20))
    async with Stalled() as server, AiohttpRequest(media_write_timeout=0.3) as request:
        url = f"http://127.0.0.1:{server.port}/bot{TOKEN}/sendDocument"
        async with asyncio.timeout(30):  # not to hang if it never came
            with pytest.raises(TimedOut, match=r"write timeout 0\.3 s"):
                await request.post(url, body)
            with pytest.raises(TimedOut, match=r"write timeout 0\.1 s"):
                await request.post(url, body, write_timeout=0.1)


# -- network errors, HTTP errors, the token ----------------------------------------------------------


async def test_no_server_is_a_network_error_without_the_token() -> None:
    async with AiohttpRequest() as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{free_port()}/bot{TOKEN}/sendMessage", message("x"))
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp." in str(caught.value)
    assert_no_secret(caught.value)


@pytest.mark.parametrize(("code", "error"), [(400, BadRequest), (403, Forbidden), (502, NetworkError)])
async def test_the_bot_apis_errors_become_ptbs(api: FakeBotAPI, code: int, error: type) -> None:
    api.fail_next("sendMessage", "Some: description", code)
    async with AiohttpRequest() as request:
        with pytest.raises(error, match="Some: description"):
            await request.post(url_of(api, "sendMessage"), message("x"))


async def test_retry_after_reaches_the_bot(api: FakeBotAPI) -> None:
    api.fail_next("sendMessage", "Too Many Requests: retry after 7", 429,
                  parameters={"retry_after": 7})
    async with AiohttpRequest() as request:
        with pytest.raises(RetryAfter) as caught:
            await request.post(url_of(api, "sendMessage"), message("x"))
    assert caught.value.retry_after.total_seconds() == 7  # type: ignore[union-attr]


async def test_the_token_is_scrubbed_from_any_message() -> None:
    assert _scrub("bad URL http://h/bot123:ABC/sendMessage and /file/bot123:ABC/a.jpg") == (
        "bad URL http://h/bot…/sendMessage and /bot…/a.jpg")
    assert "AAH-secret" not in _scrub(f"token={TOKEN}&x")
    assert _scrub("via socks5://u:p@h:1 and http://user@h", "pr0xy") == (
        "via socks5://***@h:1 and http://***@h")
    assert _scrub(f"{PASSWORD} {USER}", PASSWORD, USER) == "*** ***"


# -- uploads and downloads -----------------------------------------------------------------------


async def test_an_upload_reaches_the_server_whole_with_its_fields(api: FakeBotAPI) -> None:
    content = bytes(range(256)) * 12_000  # 3 MB: many chunks of 64 KiB
    async with AiohttpRequest() as request:
        sent = await request.post(url_of(api, "sendDocument"), document(content))
        assert isinstance(sent, dict)
        file_path = (await request.post(url_of(api, "getFile"), RequestData(
            [RequestParameter.from_input("file_id", sent["document"]["file_id"])])))["file_path"]  # type: ignore[index,call-overload]
        downloaded = await request.retrieve(f"{api.base_file_url}{api.token}/{file_path}")
    (call,) = api.calls_of("sendDocument")
    assert call.params["chat_id"] == 1 and call.params["caption"] == "ពាក្យបណ្ដឹង #12"
    uploaded = call.files["document"]
    assert uploaded.filename == "report.xlsx" and uploaded.content == content
    assert uploaded.content_type.startswith("application/vnd.openxmlformats")
    assert downloaded == content


async def test_a_file_handle_is_read_while_sending(api: FakeBotAPI, tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8" + bytes(300_000))
    async with AiohttpRequest() as request:
        with path.open("rb") as handle:
            await request.post(url_of(api, "sendDocument"), document(handle, filename="photo.jpg"))
    assert api.calls_of("sendDocument")[0].files["document"].content == path.read_bytes()


# -- life cycle ------------------------------------------------------------------------------------


async def test_a_request_must_be_initialized_first(api: FakeBotAPI) -> None:
    request = AiohttpRequest()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url_of(api, "getMe"), "POST")
    async with request:
        pass
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url_of(api, "getMe"), "POST")


async def test_initialize_and_shutdown_may_come_twice_and_again(api: FakeBotAPI) -> None:
    request = AiohttpRequest()
    await request.initialize()
    session = request._session
    await request.initialize()
    assert request._session is session
    await request.shutdown()
    await request.shutdown()
    assert session is not None and session.closed
    async with request:  # a second life
        assert (await request.post(url_of(api, "getMe")))["id"] == api.bot_id  # type: ignore[index,call-overload]


async def test_shutdown_closes_the_session(api: FakeBotAPI) -> None:
    """Without shutdown aiohttp warns of an unclosed session; with it, nothing."""

    async def used(shut_down: bool) -> tuple[bool, list[str]]:
        request = AiohttpRequest()
        await request.initialize()
        await request.post(url_of(api, "getMe"))
        assert request._session is not None
        connector = request._session.connector
        assert connector is not None
        if shut_down:
            await request.shutdown()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del request
            gc.collect()
        closed = connector.closed
        await connector.close()  # the one left open on purpose, not to warn later
        return closed, [str(w.message) for w in caught if "Unclosed" in str(w.message)]

    assert await used(shut_down=True) == (True, [])
    closed, unclosed = await used(shut_down=False)
    assert not closed and any("Unclosed client session" in w for w in unclosed)


def test_the_defaults_are_ptbs() -> None:
    request = AiohttpRequest()
    assert (request._connections, request._read, request._write, request._connect, request._pool,
            request._media_write) == (256, 5.0, 5.0, 5.0, 1.0, 20.0)
    assert request.read_timeout == 5.0 and AiohttpRequest(read_timeout=None).read_timeout is None


# -- proxies ---------------------------------------------------------------------------------------


async def test_a_request_goes_through_an_http_proxy_with_credentials(api: FakeBotAPI) -> None:
    async with HttpProxy((USER, PASSWORD)) as proxy, AiohttpRequest(
            proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}") as request:
        answer = await request.post(url_of(api, "sendMessage"), message("via http"))
        assert PASSWORD not in repr(request)
    assert answer["text"] == "via http"  # type: ignore[index,call-overload]
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{api.port}", f"{USER}:{PASSWORD}")]
    assert proxy.requests == ["POST sendMessage"]


async def test_a_request_goes_through_an_https_proxy(api: FakeBotAPI, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))  # as an operator trusts a CA
    async with HttpProxy(ssl_context=server_context) as proxy, AiohttpRequest(
            proxy=f"https://127.0.0.1:{proxy.port}") as request:
        await request.post(url_of(api, "getMe"))
    assert proxy.seen == [("CONNECT", f"127.0.0.1:{api.port}", None)]
    assert proxy.requests == ["POST getMe"]


async def test_a_request_goes_through_a_socks5_proxy_that_resolves_the_name(api: FakeBotAPI) -> None:
    async with SocksProxy((USER, PASSWORD)) as proxy, AiohttpRequest(
            proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}") as request:
        await request.post(url_of(api, "getMe", host="localhost"))
        await request.post(url_of(api, "getMe", host="localhost"))  # the tunnel is kept
    assert proxy.seen == [(5, "localhost", api.port, USER)]
    assert proxy.requests == ["POST getMe", "POST getMe"]


@pytest.mark.parametrize(("scheme", "host"), [("socks4", "127.0.0.1"), ("socks4a", "localhost")])
async def test_a_request_goes_through_a_socks4_proxy(api: FakeBotAPI, scheme: str, host: str) -> None:
    async with SocksProxy() as proxy, AiohttpRequest(proxy=f"{scheme}://127.0.0.1:{proxy.port}") as request:
        await request.post(url_of(api, "getMe", host=host))
    assert proxy.seen == [(4, host, api.port, None)]


async def test_an_upload_goes_through_a_proxy(api: FakeBotAPI) -> None:
    content = bytes(range(256)) * 4_000
    async with SocksProxy() as proxy, AiohttpRequest(proxy=f"socks5://127.0.0.1:{proxy.port}") as request:
        await request.post(url_of(api, "sendDocument"), document(content))
    assert api.calls_of("sendDocument")[0].files["document"].content == content
    assert proxy.requests == ["POST sendDocument"]


@pytest.mark.parametrize("proxy_kind", ["http", "socks5"])
async def test_a_proxy_that_refuses_is_a_network_error_without_credentials(
        api: FakeBotAPI, proxy_kind: str) -> None:
    server = HttpProxy((USER, "another")) if proxy_kind == "http" else SocksProxy((USER, "another"))
    async with server as proxy, AiohttpRequest(
            proxy=f"{proxy_kind}://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}") as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(url_of(api, "getMe"))
    assert not isinstance(caught.value, TimedOut)
    assert_no_secret(caught.value)
    assert api.calls == []


async def test_a_proxy_that_is_not_there_is_a_network_error_without_credentials(api: FakeBotAPI) -> None:
    async with AiohttpRequest(proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:{free_port()}") as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(url_of(api, "getMe"))
    assert not isinstance(caught.value, TimedOut)
    assert_no_secret(caught.value)


async def test_a_proxy_that_does_not_answer_times_out(api: FakeBotAPI) -> None:
    async with Silent() as proxy, AiohttpRequest(
            proxy=f"socks5://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}", connect_timeout=0.2) as request:
        with pytest.raises(TimedOut) as caught:
            await request.post(url_of(api, "getMe"))
    assert_no_secret(caught.value)


async def test_without_a_proxy_the_environments_is_used(api: FakeBotAPI,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    async with HttpProxy((USER, PASSWORD)) as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}")
        async with AiohttpRequest() as request:
            await request.post(url_of(api, "getMe"))
            await request.post(url_of(api, "getMe"))
    assert {(m, u) for m, _, u in proxy.seen} == {("POST", f"{USER}:{PASSWORD}")}  # forwarded
    assert proxy.requests == ["POST getMe", "POST getMe"]
    assert len(api.calls_of("getMe")) == 2


async def test_no_proxy_in_the_environment_is_honoured(api: FakeBotAPI,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    async with HttpProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with AiohttpRequest() as request:
            await request.post(url_of(api, "getMe"))
    assert proxy.seen == [] and len(api.calls_of("getMe")) == 1


async def test_a_configured_proxy_wins_over_the_environments(api: FakeBotAPI,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    async with HttpProxy() as from_env, SocksProxy() as configured:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{from_env.port}")
        async with AiohttpRequest(proxy=f"socks5://127.0.0.1:{configured.port}") as request:
            await request.post(url_of(api, "getMe"))
    assert from_env.seen == [] and len(configured.seen) == 1


# -- the proxy's URL and the config ----------------------------------------------------------------


def test_a_proxy_url_is_taken_apart_and_shown_without_credentials() -> None:
    proxy = parse_proxy("socks5://casebot-user:pr0xy%40s3cret@10.1.2.3:1080")
    assert proxy == Proxy("socks5", "10.1.2.3", 1080, "casebot-user", "pr0xy@s3cret")
    assert str(proxy) == "socks5://***@10.1.2.3:1080" and "s3cret" not in repr(proxy)
    assert str(parse_proxy("HTTP://proxy.gov.kh:3128")) == "http://proxy.gov.kh:3128"
    assert set(PROXY_SCHEMES) == set(_PROXY_KINDS)
    for scheme in PROXY_SCHEMES:
        assert parse_proxy(f"{scheme}://h:1").scheme == scheme


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://casebot-user:pr0xy-s3cret@h:21", "must start with one of"),
    ("casebot-user:pr0xy-s3cret@h:1080", "must start with one of"),
    ("socks5://casebot-user:pr0xy-s3cret@h", "needs a host and a port"),
    ("socks5://casebot-user:pr0xy-s3cret@:1080", "needs a host and a port"),
    ("socks5://casebot-user:pr0xy-s3cret@h:99999", "must be a URL"),
    ("http://casebot-user:pr0xy-s3cret@h:3128/path", "without a path"),
])
def test_a_bad_proxy_in_the_config_is_named_without_credentials(tmp_path: Path, url: str, why: str) -> None:
    config = config_dict(tmp_path / "db.sqlite3")
    config["telegram"] = {"proxy": url}
    with pytest.raises(ConfigError, match=why) as caught:
        parse_settings(config)
    assert str(caught.value).startswith("telegram.proxy: ")
    assert "s3cret" not in str(caught.value) and USER not in str(caught.value)


async def test_the_bot_sends_and_polls_through_the_configured_proxy(
        api: FakeBotAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with SocksProxy((USER, PASSWORD)) as proxy:
        config = config_dict(tmp_path / "db.sqlite3")
        config["telegram"] = {"base_url": api.base_url, "base_file_url": api.base_file_url,
                              "proxy": f"socks5://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}"}
        settings = parse_settings(config)
        assert PASSWORD not in repr(settings)
        with caplog.at_level(logging.INFO, logger="bot.app"):
            app = build_application(settings, api.token, jobs=False, rate_limiter=False)
        async with app.bot:
            await app.bot.get_updates(timeout=0)
            await app.bot.send_message(1, "hello")
    assert sorted(proxy.requests) == ["POST getMe", "POST getUpdates", "POST sendMessage"]
    assert len(proxy.seen) == 2  # one tunnel for each request object
    assert f"socks5://***@127.0.0.1:{proxy.port}" in caplog.text and PASSWORD not in caplog.text
