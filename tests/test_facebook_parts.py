"""The Facebook page's parts on their own: its config, its secrets, Meta's webhook payloads taken
apart, the Send API's body, the language of a citizen's words."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.config import (
    FB_APP_SECRET_ENV,
    FB_PAGE_TOKEN_ENV,
    ConfigError,
    FacebookSettings,
    HttpSettings,
    Secret,
    facebook_secrets,
    parse_settings,
)
from bot.messenger.events import COMMENT, MESSAGE, Attachment, Inbound, NotAnEvent, parse
from bot.messenger.graph import GraphError, message_body
from bot.messenger.inbound import language_of
from bot.messenger.webhook import signature
from tests.conftest import config_dict
from tests.fakegraph import FakeGraph

PAGE = "1000000000001"
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "casebot.example.toml"


def settings(**tables: Any) -> Any:
    data = config_dict(Path("/tmp/x.sqlite3"))
    data.update(tables)
    return parse_settings(data)


def error(**tables: Any) -> str:
    with pytest.raises(ConfigError) as exc:
        settings(**tables)
    return str(exc.value)


# --- config -------------------------------------------------------------------------------------


def test_a_page_needs_its_id_and_verify_token_and_takes_meta_defaults() -> None:
    s = settings(facebook={"page_id": "104000000000000", "verify_token": "vt-1"})
    assert s.facebook == FacebookSettings("104000000000000", "vt-1")
    assert s.facebook.graph_url == "https://graph.facebook.com" and s.facebook.api_version == "v21.0"
    assert s.facebook.path == "/facebook"
    assert "vt-1" not in repr(s)  # the verify token is not shown with the settings
    assert settings().facebook is None
    assert settings(facebook={"page_id": 104000000000000, "verify_token": "v"}).facebook is not None


@pytest.mark.parametrize(("table", "key"), [
    ({"verify_token": "v"}, "facebook.page_id: required"),
    ({"page_id": "12ab", "verify_token": "v"}, "facebook.page_id: '12ab' is not a page id"),
    ({"page_id": "1"}, "facebook.verify_token: required"),
    ({"page_id": "1", "verify_token": " "}, "facebook.verify_token: must not be empty"),
    ({"page_id": "1", "verify_token": "v", "api_version": "21"}, "facebook.api_version:"),
    ({"page_id": "1", "verify_token": "v", "path": "facebook"}, "facebook.path: must be a URL path"),
    ({"page_id": "1", "verify_token": "v", "path": "/healthz"}, "facebook.path: /healthz is already"),
    ({"page_id": "1", "verify_token": "v", "graph_url": "graph.facebook.com"}, "facebook.graph_url:"),
    ({"page_id": "1", "verify_token": "v", "app_secret": "x"}, "facebook.app_secret: unknown key"),
    ({"page_id": "1", "verify_token": "v", "per_second": 0}, "facebook.per_second:"),
])
def test_a_bad_facebook_table_is_one_line_naming_the_key(table: dict[str, Any], key: str) -> None:
    assert error(facebook=table).startswith(key)


def test_the_page_path_cannot_be_telegrams() -> None:
    webhook = {"url": "https://bot.example.org/hook", "secret_token": "abc"}
    message = error(webhook=webhook, facebook={"page_id": "1", "verify_token": "v", "path": "/hook"})
    assert message.startswith("facebook.path: /hook is already served")


def test_the_http_server_listens_where_http_says_else_where_the_webhook_did() -> None:
    assert settings().http_server == HttpSettings("127.0.0.1", 8080)
    webhook = {"url": "https://bot.example.org/hook", "secret_token": "abc", "port": 8443}
    assert settings(webhook=webhook).http_server == HttpSettings("127.0.0.1", 8443)
    assert settings(http={"listen": "0.0.0.0", "port": 9000}).http_server == HttpSettings("0.0.0.0", 9000)
    assert error(http={"port": 70000}).startswith("http.port:")
    assert error(http={"port": 9000}, webhook=webhook).startswith("webhook.port: the one HTTP server")


def test_the_secrets_come_from_the_environment_only_and_never_show() -> None:
    secrets = facebook_secrets({FB_APP_SECRET_ENV: "s3cr3t", FB_PAGE_TOKEN_ENV: "EAAtoken"})
    assert secrets.app_secret.reveal() == "s3cr3t" and secrets.page_token.reveal() == "EAAtoken"
    assert "s3cr3t" not in repr(secrets) and "EAAtoken" not in f"{secrets} {secrets.page_token}"
    with pytest.raises(ConfigError, match=FB_PAGE_TOKEN_ENV):
        facebook_secrets({FB_APP_SECRET_ENV: "s3cr3t"})
    with pytest.raises(ConfigError, match=FB_APP_SECRET_ENV):
        facebook_secrets({FB_PAGE_TOKEN_ENV: "EAAtoken", FB_APP_SECRET_ENV: "  "})
    assert str(Secret("x")) == "Secret('***')"


def test_check_config_tells_the_page_and_warns_of_a_missing_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace('# [facebook]\n# page_id = "104000000000000"\n'
                        '# verify_token = "change-me-to-another-long-random-string"\n',
                        '[facebook]\npage_id = "104000000000000"\nverify_token = "long-random"\n')
    assert "\n[facebook]\n" in text
    path = tmp_path / "casebot.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.delenv(FB_APP_SECRET_ENV, raising=False)
    monkeypatch.setenv(FB_PAGE_TOKEN_ENV, "EAAtoken")
    assert cli.main(["check-config", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert ("Facebook page 104000000000000: its webhook at /facebook (listening on 127.0.0.1:8080), "
            "replies through https://graph.facebook.com/v21.0") in out
    assert f"warning: facebook: set {FB_APP_SECRET_ENV} in the environment" in err
    assert "EAAtoken" not in out + err and "long-random" not in out + err
    # `casebot run` does not start without it: one line, exit 2.
    monkeypatch.setenv("BOT_TOKEN", "123:abc")
    assert cli.main(["run", "--config", str(path)]) == 2
    _out, err = capsys.readouterr()
    assert err.startswith(f"config error: facebook: set {FB_APP_SECRET_ENV}")


# --- Meta's webhook payloads --------------------------------------------------------------------


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def test_a_message_with_files_and_a_quick_reply_is_taken_apart() -> None:
    fake = FakeGraph(lambda: NOW - timedelta(minutes=1), page_id=PAGE)
    event = fake.message_event("2400", "Flood", mid="m_AbC", quick_reply="cz:s:12", attachments=[
        {"type": "image", "payload": {"url": "https://cdn.example/1.jpg"}},
        {"type": "file", "payload": {"url": "https://cdn.example/2.pdf"}}])
    (got,) = parse(body(event), PAGE, NOW)
    assert got == Inbound(MESSAGE, "m_AbC", "2400", NOW - timedelta(minutes=1), "Flood", "cz:s:12",
                          (Attachment("image", "https://cdn.example/1.jpg"),
                           Attachment("file", "https://cdn.example/2.pdf")))
    assert got.key == "fb:m:m_AbC" and got.chat_key == "fb:2400"
    assert Inbound.from_json(got.to_json()) == got  # as the inbox stores it


def test_echoes_deliveries_and_reads_are_not_kept() -> None:
    fake = FakeGraph(lambda: NOW, page_id=PAGE)
    assert parse(body(fake.echo_event("2400", "our reply")), PAGE, NOW) == []


def test_a_postback_is_a_choice_like_a_quick_reply() -> None:
    data = {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [{
        "sender": {"id": "2400"}, "recipient": {"id": PAGE}, "timestamp": 1790000000000,
        "postback": {"title": "Status", "payload": "cz:s:4", "mid": "m_pb"}}]}]}
    (got,) = parse(body(data), PAGE, NOW)
    assert got.kind == MESSAGE and got.payload == "cz:s:4" and got.key == "fb:m:m_pb"


def test_comments_are_kept_when_added_by_someone_else_than_the_page() -> None:
    fake = FakeGraph(lambda: NOW, page_id=PAGE)
    (got,) = parse(body(fake.comment_event("777", "Sok", "No water", comment_id="9_1")), PAGE, NOW)
    assert (got.kind, got.id, got.sender, got.name, got.text) == (COMMENT, "9_1", "777", "Sok", "No water")
    assert got.post_id == f"{PAGE}_1" and got.parent_id == "" and got.key == "fb:c:9_1"
    assert got.chat_key == "fb:777"
    for ignored in (fake.comment_event(PAGE, "The page", "Thanks"),
                    fake.comment_event("777", "Sok", "edited", verb="edited"),
                    fake.comment_event("777", "Sok", "removed", verb="remove")):
        assert parse(body(ignored), PAGE, NOW) == []


def test_a_body_that_is_no_pages_webhook_is_refused() -> None:
    for bad in (b"", b"not json", b"[]", body({"object": "user", "entry": []}), body({"object": "page"})):
        with pytest.raises(NotAnEvent):
            parse(bad, PAGE, NOW)
    # Odd entries inside a page's webhook are skipped, not fatal.
    assert parse(body({"object": "page", "entry": [1, {"messaging": [None, {"sender": 5}]}]}), PAGE, NOW) == []


def test_a_time_in_the_future_is_taken_as_now() -> None:
    fake = FakeGraph(lambda: NOW + timedelta(days=1), page_id=PAGE)
    (got,) = parse(body(fake.message_event("2400", "hi")), PAGE, NOW)
    assert got.at == NOW


def test_the_signature_is_metas() -> None:
    raw = b'{"object":"page"}'
    expected = "sha256=" + hmac.new(b"secret", raw, hashlib.sha256).hexdigest()
    assert signature("secret", raw) == expected == FakeGraph(lambda: NOW, app_secret="secret").sign(raw)


# --- the Send API -------------------------------------------------------------------------------


def test_the_send_body_is_a_plain_response_cut_to_messengers_limits() -> None:
    choices = [(f"A very long choice label {i}", f"cz:s:{i}") for i in range(20)]
    sent = message_body({"id": "2400"}, "x" * 2500, choices)
    assert sent["messaging_type"] == "RESPONSE" and sent["recipient"] == {"id": "2400"}
    assert len(sent["message"]["text"]) == 2000 and sent["message"]["text"].endswith("…")
    replies = sent["message"]["quick_replies"]
    assert len(replies) == 13 and all(len(q["title"]) <= 20 and q["content_type"] == "text" for q in replies)
    assert replies[0]["payload"] == "cz:s:0"
    assert "quick_replies" not in message_body({"comment_id": "1_2"}, "hi")["message"]


def test_graphs_errors_are_sorted_by_what_to_do() -> None:
    assert GraphError(400, 190, 463, "Session has expired").token_refused
    assert GraphError(400, 10, 2018278, "outside").outside_window
    assert not GraphError(400, 10, 0, "permission").outside_window
    assert all(GraphError(400, code).rate_limited for code in (4, 17, 32, 613))
    assert GraphError(400, 551).unavailable
    assert GraphError(500, 2).transient and GraphError(0, message="ClientConnectorError").transient
    assert not GraphError(400, 100).transient
    assert GraphError(400, 613, 0, "(#613) Calls to this api have exceeded the rate limit.").reason == (
        "Facebook 400 (code 613): (#613) Calls to this api have exceeded the rate limit.")


def test_khmer_script_means_khmer() -> None:
    assert language_of("ផ្លូវខូច", "en") == "km"
    assert language_of("The road is broken", "km") == "km"  # the default
    assert language_of("The road is broken", "en") == "en"
    assert language_of("road ផ្លូវ", "en") == "km"
