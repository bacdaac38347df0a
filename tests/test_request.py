"""bot/request.py: python-telegram-bot over aiohttp keeps PTB's timeouts and error types, and
never puts the token in an error. (Everything else goes through it in the end-to-end tests.)"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.request import AiohttpRequest, _scrub
from tests.fakebotapi import FakeBotAPI


@pytest.fixture
def slow_api() -> Iterator[FakeBotAPI]:
    api = FakeBotAPI(latency=0.3).start()
    yield api
    api.stop()


def message(text: str) -> RequestData:
    return RequestData([RequestParameter.from_input("chat_id", 1),
                        RequestParameter.from_input("text", text)])


async def test_a_call_slower_than_the_read_timeout_times_out(slow_api: FakeBotAPI) -> None:
    url = f"{slow_api.base_url}{slow_api.token}/sendMessage"
    async with AiohttpRequest(read_timeout=0.05) as request:
        with pytest.raises(TimedOut):
            await request.post(url, message("hello"))
        answer = await request.post(url, message("hello"), read_timeout=5)  # the call's own wins
    assert isinstance(answer, dict) and answer["text"] == "hello"


async def test_no_server_is_a_network_error_without_the_token() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AiohttpRequest() as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot123456:SECRET-TOKEN/sendMessage",
                               message("x"))
    assert "SECRET" not in str(caught.value) and "aiohttp." in str(caught.value)


async def test_the_token_is_scrubbed_from_any_message() -> None:
    assert _scrub("bad URL http://h/bot123:ABC/sendMessage and /file/bot123:ABC/a.jpg") == (
        "bad URL http://h/bot…/sendMessage and /bot…/a.jpg")


async def test_a_request_must_be_initialized_first() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest().do_request("http://127.0.0.1:9/bot1:x/getMe", "POST")
