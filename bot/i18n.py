"""gettext for every user-facing string, with Babel catalogs in bot/locales/<lang>/LC_MESSAGES.

The ``.po`` files are compiled in memory when first used, so no build step is needed.
The current language is a context variable set per update (and per outgoing message).
"""

from __future__ import annotations

import contextvars
import gettext as _gettext
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DOMAIN = "casebot"
LOCALES_DIR = Path(__file__).parent / "locales"
SUPPORTED = ("en", "km")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("casebot_locale", default="en")


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    po = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def normalize(code: str | None, default: str = "en") -> str:
    """Map a Telegram language_code ("km", "en-US", …) to a supported locale."""
    if code:
        base = code.split("-")[0].split("_")[0].lower()
        if base in SUPPORTED:
            return base
    return default


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> None:
    _current.set(locale)


@contextmanager
def use_locale(locale: str) -> Iterator[None]:
    token = _current.set(locale)
    try:
        yield
    finally:
        _current.reset(token)


K = TypeVar("K")


def _(message: str) -> str:
    return translations(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string for extraction; translate it later with ``_()`` or :func:`label`."""
    return message


def label(table: Mapping[K, str], key: K, fallback: K | None = None) -> str:
    """The translation of a message marked with ``N_`` in ``table`` (``fallback``'s when ``key``
    is not there). Translating by variable keeps the keys out of the catalogs: ``_(T["k"])``
    would make some Babel versions extract ``"k"`` as a message."""
    message = table[key] if fallback is None or key in table else table[fallback]
    return _(message)
