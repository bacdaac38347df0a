"""Configuration: one TOML file, validated on load.

Every error is a ``ConfigError`` whose message names the bad key and says why, so that
``casebot check-config`` can print it as one line. The bot token never lives here: it is
read from the ``BOT_TOKEN`` environment variable only.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UNIT_KINDS = ("ministry", "department", "province", "district", "commune", "external")
DEFAULT_CONFIG_ENV = "CASEBOT_CONFIG"
TOKEN_ENV = "BOT_TOKEN"
FB_APP_SECRET_ENV = "CASEBOT_FB_APP_SECRET"  # the Meta app's secret: checks the webhook's signature
FB_PAGE_TOKEN_ENV = "CASEBOT_FB_PAGE_TOKEN"  # the page's access token: the Send API


class ConfigError(ValueError):
    """A configuration problem, worded as one line naming the key."""


PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


class Proxy(NamedTuple):
    """A proxy's URL taken apart; ``str()`` and ``repr()`` show it without its credentials."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{'***@' if self.username or self.password else ''}{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Proxy({str(self)!r})"


def parse_proxy(url: str) -> Proxy:
    """``scheme://[user:password@]host:port`` (percent-encoded credentials), else a ``ValueError``
    whose message never repeats the URL's credentials."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ValueError("must be a URL like socks5://host:1080") from None
    scheme = parts.scheme.lower()
    if scheme not in PROXY_SCHEMES:
        raise ValueError(f"must start with one of {', '.join(s + '://' for s in PROXY_SCHEMES)}")
    if not parts.hostname or port is None:
        raise ValueError(f"needs a host and a port, as in {scheme}://host:1080")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValueError(f"must be only {scheme}://[user:password@]host:port, without a path")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return Proxy(scheme, parts.hostname, port, user, password)


@dataclass(frozen=True)
class TelegramSettings:
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    proxy: Proxy | None = None  # for both request objects; never shown with its credentials
    # When the Bot API cannot be reached (at start, or while polling): wait 1 s, then twice as
    # long each time up to retry_max_seconds; give up after start_attempts tries at start
    # (0: keep trying, as a service should through a network blip).
    retry_max_seconds: float = 60.0
    start_attempts: int = 0


@dataclass(frozen=True)
class WebhookSettings:
    """``casebot run --webhook``: Telegram posts updates to ``url``; the bot listens on
    ``listen``:``port`` (behind the ministry's TLS proxy) and checks ``secret_token``."""

    url: str
    secret_token: str
    listen: str = "127.0.0.1"
    port: int = 8080
    max_connections: int = 40

    @property
    def path(self) -> str:
        from urllib.parse import urlsplit

        return urlsplit(self.url).path or "/"


@dataclass(frozen=True)
class HttpSettings:
    """Where the one HTTP server listens (Telegram's webhook, the Facebook page's, /healthz)."""

    listen: str = "127.0.0.1"
    port: int = 8080  # 0: any free port (tests)


@dataclass(frozen=True)
class FacebookSettings:
    """The minister's Facebook page (bot/messenger/): Meta posts its messages and comments to
    ``path`` on the HTTP server; replies go through the Graph API's Send API at
    ``graph_url``/``api_version``. The app secret and the page token are never here: they come
    from the environment only (``FB_APP_SECRET_ENV``, ``FB_PAGE_TOKEN_ENV``)."""

    page_id: str
    verify_token: str = field(repr=False)
    graph_url: str = "https://graph.facebook.com"
    api_version: str = "v21.0"
    path: str = "/facebook"
    per_second: float = 10.0  # Send API calls, all citizens together


class Secret:
    """A secret from the environment: shown as ``***`` by ``str`` and ``repr`` (so never in a
    log line or an error); ``reveal()`` only where it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class FacebookSecrets:
    app_secret: Secret
    page_token: Secret


def facebook_secrets(env: dict[str, str] | None = None) -> FacebookSecrets:
    """The page's secrets from the environment, or a ``ConfigError`` naming the missing one."""
    env = dict(os.environ) if env is None else env
    values = []
    for name, what in ((FB_APP_SECRET_ENV, "the Meta app's secret (App settings → Basic)"),
                       (FB_PAGE_TOKEN_ENV, "the page's access token")):
        value = env.get(name, "").strip()
        if not value:
            raise ConfigError(f"facebook: set {name} in the environment to {what} "
                              "(it is never read from a file)")
        values.append(Secret(value))
    return FacebookSecrets(*values)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class DeadlineSettings:
    resolve_days: int = 15
    urgent_resolve_days: int = 3
    accept_days: int = 1
    ack_days: int = 3
    verify_days: int = 7
    bouncing_after: int = 3
    working_days: tuple[int, ...] | None = None  # ISO weekdays (1 = Monday); None: every day counts
    holidays: tuple[date, ...] = ()       # added to the country's public holidays (substitute days)
    not_holidays: tuple[date, ...] = ()   # the country's holidays that count as working days
    holiday_country: str | None = "KH"    # whose public holidays count (the holidays package); None: none


@dataclass(frozen=True)
class ReminderSettings:
    interval_minutes: float = 5
    quiet_start: time = time(20, 0)
    quiet_end: time = time(7, 0)
    escalate_after_days: int = 2        # E1: the unit's supervisors
    escalate_again_after_days: int = 5  # E2: the parent unit's supervisors and the working group
    max_snoozes: int = 2
    warn_before_days: int = 1           # a warning this many (working) days before a deadline; 0: none


@dataclass(frozen=True)
class DeliverySettings:
    overall_per_second: float = 30
    per_chat_per_second: float = 1
    group_per_minute: float = 20
    # Notices (plain texts: "#12 accepted by …") wait this long so that those of a burst go to
    # their chat as one message; 0 sends each at once.
    notice_seconds: float = 1.0


@dataclass(frozen=True)
class FloodSettings:
    """How fast one person may write to the bot (see bot/handlers/flood.py for the reasons)."""

    burst: int = 20            # updates at once (an album of 10 photos, a few forwards, taps)
    per_minute: float = 30     # the allowance coming back: one every 2 seconds, kept up
    quiet_seconds: float = 60  # once over it: one "please slow down", then this long ignored


@dataclass(frozen=True)
class CitizenSettings:
    """Limits on citizens' requests from Telegram, the same for everyone (bot/handlers/citizens.py):
    no blacklist, only a ceiling on what one person has open and sends in a day."""

    max_open_requests: int = 3  # requests waiting or made into a case still open
    max_requests: int = 5       # requests sent in the last ``per_hours`` hours
    per_hours: int = 24


@dataclass(frozen=True)
class BackupSettings:
    """The daily backup (bot/jobs/backup.py): at ``time`` (local) into ``folder``, the ``keep``
    newest kept."""

    folder: Path
    time: time = time(2, 0)
    keep: int = 7


@dataclass(frozen=True)
class InstanceSettings:
    """Two instances on one database (bot/lease.py): a lease or an inbox claim not renewed for
    ``lease_seconds`` is taken over by the other instance (renewed every third of it); ``name``
    names this instance in the holders' ids (default: the host name)."""

    lease_seconds: float = 30.0
    name: str | None = None

    @property
    def renew_seconds(self) -> float:
        return self.lease_seconds / 3


@dataclass(frozen=True)
class Category:
    key: str
    name: str
    name_km: str | None = None
    resolve_days: int | None = None         # overrides deadlines.resolve_days
    urgent_resolve_days: int | None = None  # overrides deadlines.urgent_resolve_days


@dataclass(frozen=True)
class UnitConfig:
    key: str
    name: str
    kind: str
    parent: str | None = None
    chat_id: int | None = None
    ack_days: int | None = None  # institutions only: days to acknowledge a forward
    name_km: str | None = None


@dataclass(frozen=True)
class Settings:
    timezone: str = "Asia/Phnom_Penh"
    default_language: str = "km"
    database_path: Path = Path("data/casebot.sqlite3")
    # database.url: PostgreSQL instead of the file (password from CASEBOT_DATABASE_PASSWORD);
    # database.path is then only where the sender's heartbeat file goes (casebot health)
    database_url: str | None = None
    admins: tuple[int, ...] = ()
    working_group: tuple[int, ...] = ()
    working_group_chat_id: int | None = None
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    webhook: WebhookSettings | None = None
    http: HttpSettings | None = None       # where the HTTP server listens (else [webhook]'s)
    facebook: FacebookSettings | None = None  # no [facebook] table: no Facebook page
    deadlines: DeadlineSettings = field(default_factory=DeadlineSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    flood: FloodSettings = field(default_factory=FloodSettings)
    citizens: CitizenSettings = field(default_factory=CitizenSettings)
    backup: BackupSettings | None = None  # no [backup] table: no scheduled backups
    instances: InstanceSettings = field(default_factory=InstanceSettings)
    digest_time: time = time(7, 30)
    outbox_interval_seconds: float = 5.0
    invitation_hours: int = 72
    erase_closed_after_days: int | None = None  # privacy: personal data of closed cases kept this long
    categories: tuple[Category, ...] = ()
    units: tuple[UnitConfig, ...] = ()

    @property
    def database(self) -> Path | str:
        """What ``Database.open`` opens: the PostgreSQL URL if there is one, else the file."""
        return self.database_url if self.database_url is not None else self.database_path

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def http_server(self) -> HttpSettings:
        """Where the HTTP server listens: ``[http]``, else ``[webhook]``'s listen and port."""
        if self.http is not None:
            return self.http
        if self.webhook is not None:
            return HttpSettings(self.webhook.listen, self.webhook.port)
        return HttpSettings()


def _expect(value: Any, typ: type | tuple[type, ...], key: str, what: str) -> Any:
    # bool is an int in Python; a TOML ``true`` is never a valid id or number here.
    if isinstance(value, bool) and bool not in (typ if isinstance(typ, tuple) else (typ,)):
        raise ConfigError(f"{key}: must be {what}, got {value!r}")
    if not isinstance(value, typ):
        raise ConfigError(f"{key}: must be {what}, got {value!r}")
    return value


def _ids(raw: Any, key: str) -> tuple[int, ...]:
    _expect(raw, list, key, "a list of Telegram user ids")
    return tuple(_expect(v, int, f"{key}[{i}]", "a Telegram user id") for i, v in enumerate(raw))


def _unknown(table: dict[str, Any], allowed: set[str], prefix: str) -> None:
    for k in table:
        if k not in allowed:
            raise ConfigError(f"{prefix}{k}: unknown key")


def _text(raw: Any, key: str) -> str:
    _expect(raw, str, key, "a non-empty string")
    if not raw.strip():
        raise ConfigError(f"{key}: must not be empty")
    return str(raw).strip()


def _key(raw: Any, key: str) -> str:
    text = _text(raw, key)
    if not all(c.isalnum() or c in "-_" for c in text) or not text.isascii():
        raise ConfigError(f"{key}: {text!r} may hold only letters, digits, '-' and '_'")
    return text.lower()


def _positive_int(raw: Any, key: str) -> int:
    _expect(raw, int, key, "a whole number")
    if raw <= 0:
        raise ConfigError(f"{key}: must be at least 1, got {raw}")
    return int(raw)


def parse_settings(data: dict[str, Any], base_dir: Path | None = None) -> Settings:
    """Validate a parsed TOML document and build ``Settings``."""
    _unknown(
        data,
        {
            "timezone", "default_language", "admins", "working_group", "working_group_chat_id",
            "telegram", "database", "deadlines", "reminders", "digest", "delivery", "outbox",
            "invitations", "flood", "categories", "units", "webhook", "backup", "privacy",
            "http", "facebook", "citizens", "instances",
        },
        "",
    )
    tz = _text(data.get("timezone", "Asia/Phnom_Penh"), "timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"timezone: {tz!r} is not a known IANA time zone") from exc
    lang = _text(data.get("default_language", "km"), "default_language")
    if lang not in ("km", "en"):
        raise ConfigError(f"default_language: {lang!r} is not one of km, en")

    telegram_raw = _expect(data.get("telegram", {}), dict, "telegram", "a table")
    _unknown(telegram_raw, {"base_url", "base_file_url", "proxy", "retry_max_seconds",
                            "start_attempts"}, "telegram.")
    proxy = None
    if "proxy" in telegram_raw:
        proxy_url = _text(telegram_raw["proxy"], "telegram.proxy")
        try:
            proxy = parse_proxy(proxy_url)
        except ValueError as exc:  # its message never holds the credentials
            raise ConfigError(f"telegram.proxy: {exc}") from None
    start_attempts = _expect(telegram_raw.get("start_attempts", 0), int, "telegram.start_attempts",
                             "a whole number (0: keep trying)")
    if start_attempts < 0:
        raise ConfigError(f"telegram.start_attempts: must be 0 (keep trying) or more, got {start_attempts}")
    telegram = TelegramSettings(
        retry_max_seconds=_positive_number(telegram_raw.get("retry_max_seconds", 60),
                                           "telegram.retry_max_seconds"),
        start_attempts=start_attempts,
        base_url=_url(telegram_raw.get("base_url", TelegramSettings.base_url), "telegram.base_url"),
        base_file_url=_url(
            telegram_raw.get("base_file_url", TelegramSettings.base_file_url),
            "telegram.base_file_url",
        ),
        proxy=proxy,
    )

    db_raw = _expect(data.get("database", {}), dict, "database", "a table")
    _unknown(db_raw, {"path", "url"}, "database.")
    db_path = Path(_text(db_raw.get("path", "data/casebot.sqlite3"), "database.path"))
    if base_dir is not None and not db_path.is_absolute():
        db_path = base_dir / db_path
    db_url = _database_url(db_raw["url"]) if "url" in db_raw else None

    dl_raw = _expect(data.get("deadlines", {}), dict, "deadlines", "a table")
    known = {"resolve_days": 15, "urgent_resolve_days": 3, "accept_days": 1, "ack_days": 3,
             "verify_days": 7, "bouncing_after": 3}
    _unknown(dl_raw, {*known, "working_days", "holidays", "not_holidays", "holiday_country"},
             "deadlines.")
    holidays = _dates(dl_raw.get("holidays", []), "deadlines.holidays")
    not_holidays = _dates(dl_raw.get("not_holidays", []), "deadlines.not_holidays")
    both = sorted(set(holidays) & set(not_holidays))
    if both:
        raise ConfigError(f"deadlines.not_holidays: {both[0].isoformat()} is also in deadlines.holidays")
    deadlines = DeadlineSettings(
        **{k: _positive_int(dl_raw.get(k, v), f"deadlines.{k}") for k, v in known.items()},
        working_days=_weekdays(dl_raw.get("working_days")),
        holidays=holidays,
        not_holidays=not_holidays,
        holiday_country=_country(dl_raw.get("holiday_country", DeadlineSettings.holiday_country)),
    )
    rem_raw = _expect(data.get("reminders", {}), dict, "reminders", "a table")
    rem_known = {"escalate_after_days": 2, "escalate_again_after_days": 5, "max_snoozes": 2}
    _unknown(rem_raw, {*rem_known, "interval_minutes", "quiet_start", "quiet_end", "warn_before_days"},
             "reminders.")
    rem_ints = {k: _positive_int(rem_raw.get(k, v), f"reminders.{k}") for k, v in rem_known.items()}
    warn_before = _expect(rem_raw.get("warn_before_days", 1), int, "reminders.warn_before_days",
                          "a whole number of days (0: no warning)")
    if warn_before < 0:
        raise ConfigError(f"reminders.warn_before_days: must be 0 (no warning) or more, got {warn_before}")
    if rem_ints["escalate_again_after_days"] <= rem_ints["escalate_after_days"]:
        raise ConfigError("reminders.escalate_again_after_days: must be more than escalate_after_days")
    reminders = ReminderSettings(
        interval_minutes=_positive_number(rem_raw.get("interval_minutes", 5), "reminders.interval_minutes"),
        quiet_start=_clock(rem_raw.get("quiet_start", "20:00"), "reminders.quiet_start"),
        quiet_end=_clock(rem_raw.get("quiet_end", "07:00"), "reminders.quiet_end"),
        warn_before_days=warn_before,
        **rem_ints,
    )
    digest_raw = _expect(data.get("digest", {}), dict, "digest", "a table")
    _unknown(digest_raw, {"time"}, "digest.")
    digest_time = _clock(digest_raw.get("time", "07:30"), "digest.time")
    del_raw = _expect(data.get("delivery", {}), dict, "delivery", "a table")
    del_known = {"overall_per_second": 30, "per_chat_per_second": 1, "group_per_minute": 20}
    _unknown(del_raw, {*del_known, "notice_seconds"}, "delivery.")
    notice = del_raw.get("notice_seconds", 1.0)
    _expect(notice, (int, float), "delivery.notice_seconds", "a number")
    if not 0 <= notice <= 60:
        raise ConfigError(f"delivery.notice_seconds: must be from 0 to 60, got {notice}")
    delivery = DeliverySettings(
        **{k: _positive_number(del_raw.get(k, v), f"delivery.{k}") for k, v in del_known.items()},
        notice_seconds=float(notice),
    )
    outbox_raw = _expect(data.get("outbox", {}), dict, "outbox", "a table")
    _unknown(outbox_raw, {"interval_seconds"}, "outbox.")
    interval = _expect(
        outbox_raw.get("interval_seconds", 5), (int, float), "outbox.interval_seconds", "a number"
    )
    if not math.isfinite(interval) or interval <= 0:
        raise ConfigError(f"outbox.interval_seconds: must be a finite number greater than 0, got {interval}")

    flood_raw = _expect(data.get("flood", {}), dict, "flood", "a table")
    _unknown(flood_raw, {"burst", "per_minute", "quiet_seconds"}, "flood.")
    flood = FloodSettings(
        burst=_positive_int(flood_raw.get("burst", FloodSettings.burst), "flood.burst"),
        per_minute=_positive_number(flood_raw.get("per_minute", FloodSettings.per_minute),
                                    "flood.per_minute"),
        quiet_seconds=_positive_number(flood_raw.get("quiet_seconds", FloodSettings.quiet_seconds),
                                       "flood.quiet_seconds"),
    )

    citizens = _citizens(data.get("citizens", {}))

    inv_raw = _expect(data.get("invitations", {}), dict, "invitations", "a table")
    _unknown(inv_raw, {"ttl_hours"}, "invitations.")
    invitation_hours = _positive_int(inv_raw.get("ttl_hours", 72), "invitations.ttl_hours")

    privacy_raw = _expect(data.get("privacy", {}), dict, "privacy", "a table")
    _unknown(privacy_raw, {"erase_closed_after_days"}, "privacy.")
    retention = privacy_raw.get("erase_closed_after_days")
    if retention is not None:
        retention = _positive_int(retention, "privacy.erase_closed_after_days")

    wg_chat = data.get("working_group_chat_id")
    if wg_chat is not None:
        _expect(wg_chat, int, "working_group_chat_id", "a Telegram chat id")

    categories = _categories(data.get("categories", []))
    units = _units(data.get("units", []))
    for i, unit in enumerate(units):
        if wg_chat is not None and unit.chat_id == wg_chat:
            raise ConfigError(f"units[{i}].chat_id: chat {wg_chat} is the working group's chat")

    webhook = _webhook(data.get("webhook"))
    http = _http(data.get("http"), data.get("webhook"))
    return Settings(
        webhook=webhook,
        http=http,
        facebook=_facebook(data.get("facebook"), webhook),
        instances=_instances(data.get("instances", {})),
        backup=_backup(data.get("backup"), base_dir),
        timezone=tz,
        default_language=lang,
        database_path=db_path,
        database_url=db_url,
        admins=_ids(data.get("admins", []), "admins"),
        working_group=_ids(data.get("working_group", []), "working_group"),
        working_group_chat_id=wg_chat,
        telegram=telegram,
        deadlines=deadlines,
        reminders=reminders,
        delivery=delivery,
        flood=flood,
        citizens=citizens,
        digest_time=digest_time,
        outbox_interval_seconds=float(interval),
        invitation_hours=invitation_hours,
        erase_closed_after_days=retention,
        categories=categories,
        units=units,
    )


def _citizens(raw: Any) -> CitizenSettings:
    table = _expect(raw, dict, "citizens", "a table")
    _unknown(table, {"max_open_requests", "max_requests", "per_hours"}, "citizens.")
    return CitizenSettings(**{
        key: _positive_int(table.get(key, default), f"citizens.{key}")
        for key, default in (("max_open_requests", CitizenSettings.max_open_requests),
                             ("max_requests", CitizenSettings.max_requests),
                             ("per_hours", CitizenSettings.per_hours))
    })


def _instances(raw: Any) -> InstanceSettings:
    table = _expect(raw, dict, "instances", "a table")
    _unknown(table, {"lease_seconds", "name"}, "instances.")
    seconds = _positive_number(table.get("lease_seconds", InstanceSettings.lease_seconds),
                               "instances.lease_seconds")
    if not 1 <= seconds <= 3600:
        raise ConfigError(f"instances.lease_seconds: must be from 1 to 3600, got {seconds:g}")
    name = table.get("name")
    if name is not None:
        name = _text(name, "instances.name")
        if not all(c.isalnum() or c in "-_." for c in name) or not name.isascii():
            raise ConfigError(f"instances.name: {name!r} may hold only letters, digits, '-', '_' and '.'")
    return InstanceSettings(lease_seconds=seconds, name=name)


def _database_url(raw: Any) -> str:
    """database.url: ``postgresql://user@host:port/database`` (no password in it)."""
    text = _text(raw, "database.url")
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise ConfigError("database.url: give it as postgresql://user@host:5432/database")
    if parts.password is not None:
        raise ConfigError("database.url: leave the password out of the URL; put it in the "
                          "environment variable CASEBOT_DATABASE_PASSWORD")
    try:
        parts.port  # noqa: B018  (a bad port raises here)
    except ValueError:
        raise ConfigError("database.url: the port is not a number") from None
    return text


def _positive_number(raw: Any, key: str) -> float:
    _expect(raw, (int, float), key, "a number")
    if not math.isfinite(raw) or raw <= 0:
        raise ConfigError(f"{key}: must be a finite number greater than 0, got {raw}")
    return float(raw)


def _clock(raw: Any, key: str) -> time:
    text = _text(raw, key)
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ConfigError(f"{key}: {text!r} is not a time like 07:30") from None


def _weekdays(raw: Any) -> tuple[int, ...] | None:
    if raw is None:
        return None
    _expect(raw, list, "deadlines.working_days", "a list of days like [\"mon\", \"tue\"]")
    days = []
    for i, v in enumerate(raw):
        if not isinstance(v, str) or v.lower()[:3] not in WEEKDAYS:
            raise ConfigError(f"deadlines.working_days[{i}]: {v!r} is not one of {', '.join(WEEKDAYS)}")
        days.append(WEEKDAYS.index(v.lower()[:3]) + 1)
    if not days:
        raise ConfigError("deadlines.working_days: at least one working day is needed")
    return tuple(sorted(set(days)))


def _dates(raw: Any, key: str) -> tuple[date, ...]:
    _expect(raw, list, key, "a list of dates like [\"2026-04-14\"]")
    out = []
    for i, v in enumerate(raw):
        if isinstance(v, date) and not isinstance(v, datetime):
            out.append(v)
            continue
        try:
            out.append(date.fromisoformat(str(v)))
        except ValueError:
            raise ConfigError(f"{key}[{i}]: {v!r} is not a date like 2026-04-14") from None
    return tuple(sorted(set(out)))


def _country(raw: Any) -> str | None:
    """A country's two-letter code (e.g. KH), or "" for none. Whether the holidays package knows
    it is checked where the calendar is built (``casebot check-config`` and ``run`` say so)."""
    _expect(raw, str, "deadlines.holiday_country", 'a country code like "KH" ("" for none)')
    code = raw.strip().upper()
    if not code:
        return None
    if len(code) != 2 or not (code.isascii() and code.isalpha()):
        raise ConfigError(f"deadlines.holiday_country: {raw!r} is not a two-letter country code "
                          '(e.g. "KH" for Cambodia; "" for none)')
    return code


def _url(raw: Any, key: str) -> str:
    text = _text(raw, key)
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"{key}: must start with http:// or https://, got {text!r}")
    return text


def _categories(raw: Any) -> tuple[Category, ...]:
    _expect(raw, list, "categories", "a list of tables ([[categories]])")
    if not raw:
        raise ConfigError("categories: at least one category is needed to create cases")
    seen: set[str] = set()
    out = []
    for i, item in enumerate(raw):
        where = f"categories[{i}]"
        _expect(item, dict, where, "a table with key and name")
        _unknown(item, {"key", "name", "name_km", "resolve_days", "urgent_resolve_days"}, f"{where}.")
        key = _key(item.get("key"), f"{where}.key")
        if key in seen:
            raise ConfigError(f"{where}.key: {key!r} is defined twice")
        seen.add(key)
        days = {k: _positive_int(item[k], f"{where}.{k}")
                for k in ("resolve_days", "urgent_resolve_days") if k in item}
        name_km = _text(item["name_km"], f"{where}.name_km") if "name_km" in item else None
        out.append(Category(key=key, name=_text(item.get("name"), f"{where}.name"), name_km=name_km,
                            **days))
    return tuple(out)


def _units(raw: Any) -> tuple[UnitConfig, ...]:
    _expect(raw, list, "units", "a list of tables ([[units]])")
    if not raw:
        raise ConfigError("units: at least one unit is needed to assign cases")
    units: list[UnitConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"units[{i}]"
        _expect(item, dict, where, "a table with key, name and kind")
        _unknown(item, {"key", "name", "name_km", "kind", "parent", "chat_id", "ack_days"}, f"{where}.")
        key = _key(item.get("key"), f"{where}.key")
        if key in seen:
            raise ConfigError(f"{where}.key: {key!r} is defined twice")
        if key == "workgroup":
            raise ConfigError(f"{where}.key: 'workgroup' is reserved for the working group's chat")
        seen.add(key)
        kind = _text(item.get("kind"), f"{where}.kind")
        if kind not in UNIT_KINDS:
            raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(UNIT_KINDS)}")
        parent = item.get("parent")
        if parent is not None:
            parent = _key(parent, f"{where}.parent")
        chat_id = item.get("chat_id")
        if chat_id is not None:
            _expect(chat_id, int, f"{where}.chat_id", "a Telegram chat id")
        ack_days = item.get("ack_days")
        if ack_days is not None:
            ack_days = _positive_int(ack_days, f"{where}.ack_days")
            if kind != "external":
                raise ConfigError(f"{where}.ack_days: only institutions (kind external) acknowledge")
        name_km = _text(item["name_km"], f"{where}.name_km") if "name_km" in item else None
        units.append(
            UnitConfig(key, _text(item.get("name"), f"{where}.name"), kind, parent, chat_id, ack_days,
                       name_km)
        )
    chats: dict[int, str] = {}
    for i, unit in enumerate(units):
        if unit.chat_id is not None:
            if unit.chat_id in chats:
                raise ConfigError(
                    f"units[{i}].chat_id: chat {unit.chat_id} already belongs to {chats[unit.chat_id]!r}"
                )
            chats[unit.chat_id] = unit.key
    by_key = {u.key: u for u in units}
    for i, unit in enumerate(units):
        if unit.parent is not None and unit.parent not in by_key:
            raise ConfigError(f"units[{i}].parent: no unit has the key {unit.parent!r}")
    # Walk up from every unit; meeting a unit twice means a cycle.
    for i, unit in enumerate(units):
        seen_path = {unit.key}
        cur = unit
        while cur.parent is not None:
            if cur.parent in seen_path:
                raise ConfigError(f"units[{i}].parent: the tree has a cycle through {unit.key!r}")
            seen_path.add(cur.parent)
            cur = by_key[cur.parent]
    if not any(u.parent is None for u in units):
        raise ConfigError("units: no top-level unit (one without a parent)")
    return tuple(units)


def load_settings(path: str | Path) -> Settings:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        mount = f"; in a container, mount yours there: -v /srv/casebot/casebot.toml:{p}:ro"
        raise ConfigError(
            f"config: file {str(p)!r} does not exist: write it (start from config/casebot.example.toml) "
            f"or give another with --config PATH or {DEFAULT_CONFIG_ENV}" + (mount if p.is_absolute() else "")
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config: cannot read {str(p)!r}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {str(p)!r} is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {str(p)!r} is not valid TOML: {exc}") from exc
    return parse_settings(data)


def resolve_config_path(cli_value: str | None) -> Path:
    value = cli_value or os.environ.get(DEFAULT_CONFIG_ENV)
    if not value:
        raise ConfigError(
            f"config: give --config PATH or set {DEFAULT_CONFIG_ENV} to the TOML file"
        )
    return Path(value)


# The ids in config/casebot.example.toml's admins and working_group: left in a real config, they
# would give whoever owns them a role (a test keeps this list and the example in step).
EXAMPLE_IDS = frozenset({100000001, 100000002})


def config_warnings(settings: Settings, today: date) -> list[str]:
    """What is valid but probably wrong (check-config prints these as warnings): the example's
    ids among the admins or the working group; without a country's calendar, holidays that do not
    reach this year or the next."""
    warnings = [
        f"{key}: {tg_id} is an id from the example config; put your own Telegram ids there"
        for key, ids in (("admins", settings.admins), ("working_group", settings.working_group))
        for tg_id in ids if tg_id in EXAMPLE_IDS
    ]
    if settings.deadlines.working_days is not None and settings.deadlines.holiday_country is None:
        # holidays count only with working days; a country's calendar knows every year
        years = {d.year for d in settings.deadlines.holidays}
        warnings += [
            f"deadlines.holidays: no date in {year}; deadlines falling then will count holidays "
            "as working days"
            for year in (today.year, today.year + 1) if year not in years
        ]
    return warnings


def missing_khmer_names(settings: Settings) -> list[str]:
    """Keys of units and categories without a Khmer name (check-config reports them)."""
    missing = [f"categories[{i}].name_km ({c.key})" for i, c in enumerate(settings.categories)
               if not c.name_km]
    missing += [f"units[{i}].name_km ({u.key})" for i, u in enumerate(settings.units) if not u.name_km]
    return missing


def unit_tree_lines(settings: Settings) -> list[str]:
    """The unit tree as indented lines (for check-config and logs)."""
    children: dict[str | None, list[UnitConfig]] = {}
    for u in settings.units:
        children.setdefault(u.parent, []).append(u)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for u in children.get(parent, []):
            chat = f" chat {u.chat_id}" if u.chat_id is not None else ""
            lines.append(f"{'  ' * depth}{u.key}: {u.name} [{u.kind}]{chat}")
            walk(u.key, depth + 1)

    walk(None, 0)
    return lines


def _backup(raw: Any, base_dir: Path | None) -> BackupSettings | None:
    if raw is None:
        return None
    _expect(raw, dict, "backup", "a table")
    _unknown(raw, {"folder", "time", "keep"}, "backup.")
    if "folder" not in raw:
        raise ConfigError("backup.folder: required: the folder the daily backups are written to")
    folder = Path(_text(raw["folder"], "backup.folder"))
    if base_dir is not None and not folder.is_absolute():
        folder = base_dir / folder
    return BackupSettings(folder=folder, time=_clock(raw.get("time", "02:00"), "backup.time"),
                          keep=_positive_int(raw.get("keep", BackupSettings.keep), "backup.keep"))


def _webhook(raw: Any) -> WebhookSettings | None:
    if raw is None:
        return None
    _expect(raw, dict, "webhook", "a table")
    _unknown(raw, {"url", "secret_token", "listen", "port", "max_connections"}, "webhook.")
    url = _text(raw.get("url", ""), "webhook.url") if "url" in raw else ""
    if not url.startswith("https://"):
        raise ConfigError("webhook.url: the public https:// address Telegram posts updates to")
    secret = raw.get("secret_token")
    if secret is None:
        raise ConfigError("webhook.secret_token: required (1-256 of A-Z a-z 0-9 _ -): "
                          "only Telegram knows it, so only Telegram's requests are taken")
    _expect(secret, str, "webhook.secret_token", "a string")
    if not 1 <= len(secret) <= 256 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in secret):
        raise ConfigError("webhook.secret_token: 1-256 characters of A-Z a-z 0-9 _ -")
    port = _positive_int(raw.get("port", 8080), "webhook.port")
    if port > 65535:
        raise ConfigError(f"webhook.port: must be at most 65535, got {port}")
    connections = _positive_int(raw.get("max_connections", 40), "webhook.max_connections")
    if connections > 100:
        raise ConfigError(f"webhook.max_connections: Telegram allows 1-100, got {connections}")
    return WebhookSettings(url=url, secret_token=secret,
                           listen=_text(raw.get("listen", "127.0.0.1"), "webhook.listen"),
                           port=port, max_connections=connections)


def _http(raw: Any, webhook: Any) -> HttpSettings | None:
    if raw is None:
        return None
    _expect(raw, dict, "http", "a table")
    _unknown(raw, {"listen", "port"}, "http.")
    port = _expect(raw.get("port", 8080), int, "http.port", "a port number")
    if not 0 <= port <= 65535:
        raise ConfigError(f"http.port: must be from 1 to 65535 (0: any free port), got {port}")
    if isinstance(webhook, dict) and (both := sorted({"listen", "port"} & webhook.keys())):
        raise ConfigError(f"webhook.{both[0]}: the one HTTP server listens where [http] says; "
                          "give listen and port in [http] only")
    return HttpSettings(listen=_text(raw.get("listen", "127.0.0.1"), "http.listen"), port=port)


def _facebook(raw: Any, webhook: WebhookSettings | None) -> FacebookSettings | None:
    if raw is None:
        return None
    _expect(raw, dict, "facebook", "a table")
    _unknown(raw, {"page_id", "verify_token", "graph_url", "api_version", "path", "per_second"},
             "facebook.")
    if "page_id" not in raw:
        raise ConfigError("facebook.page_id: required: the page's id (its About page, or "
                          "Meta Business Suite's page settings)")
    page_id = str(_expect(raw["page_id"], (str, int), "facebook.page_id", "the page's id")).strip()
    if not page_id.isdigit() or not page_id.isascii():
        raise ConfigError(f"facebook.page_id: {page_id!r} is not a page id (digits only)")
    if "verify_token" not in raw:
        raise ConfigError("facebook.verify_token: required: the word you give Meta with the "
                          "callback URL, so that only your app subscribes the webhook")
    verify = _text(raw["verify_token"], "facebook.verify_token")
    version = _text(raw.get("api_version", FacebookSettings.api_version), "facebook.api_version")
    if not (version.startswith("v") and version[1:].replace(".", "", 1).isdigit()):
        raise ConfigError(f"facebook.api_version: {version!r} is not a Graph API version like v21.0")
    path = _text(raw.get("path", FacebookSettings.path), "facebook.path")
    if not path.startswith("/") or any(c.isspace() for c in path):
        raise ConfigError(f"facebook.path: must be a URL path like /facebook, got {path!r}")
    if path == "/healthz" or (webhook is not None and webhook.path == path):
        raise ConfigError(f"facebook.path: {path} is already served (/healthz, Telegram's webhook)")
    return FacebookSettings(
        page_id=page_id, verify_token=verify,
        graph_url=_url(raw.get("graph_url", FacebookSettings.graph_url), "facebook.graph_url").rstrip("/"),
        api_version=version, path=path,
        per_second=_positive_number(raw.get("per_second", FacebookSettings.per_second),
                                    "facebook.per_second"))
