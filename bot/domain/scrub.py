"""Personal data out of free text, for what leaves the bot without personal data.

Citizens write "My name is Sok Dara, call me on +855 12 345 678" into their requests, and officials
copy such things into notes. ``Scrubber`` replaces with ``[removed]``:

- the case's own citizen names: each part of them ("Sok", "Dara") wherever it stands as a word,
  in any case; in Khmer script also the whole name with or without spaces ("សុខដារា"), and each
  part where it stands alone or right after "ឈ្មោះ" (name) or an honorific (Khmer has no spaces
  between words: "សុខ" inside "សុខភាព" stays). Honorifics ("Mr", "លោក", "អ្នកស្រី") are not names;
- the case's own contacts as written, and their phone number however it is written;
- phone numbers of anyone: a run of at least 8 digits (ASCII or Khmer, ``០``–``៩``) with single
  spaces, dots, dashes or parentheses between them that starts with ``0``, ``855`` or ``+`` (so
  ``012 909 808``, ``097-123-4567``, ``+855 (0)12 345 678``, ``00855 12 345 678``, ``០១២ ៣៤៥ ៦៧៨``);
  dates (``05-03-2021``, ``2021.03.15``) and amounts (``10.000.000``) are not phone numbers;
- e-mail addresses, ``@usernames``, and links to Facebook, Messenger, Telegram, WhatsApp, TikTok
  and Instagram.

What it cannot know (README says so): the names of other people (a neighbour, a village chief), a
name spelled otherwise than in the case (Latin in the text, Khmer in the case), addresses, ID card
or land title numbers, and phone numbers of others written without their leading 0 or country code
(``12 345 678``). A word that is also a part of the citizen's name goes too (a citizen named
"Long" takes "long" out of the text): better one word too many than a name.

It works without a regular expression of its own per case (compiling one costs about a
millisecond): a scrubber costs next to nothing to build, so an export builds one per case.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from bot.inputs import ascii_digits

REMOVED = "[removed]"

_D = "[0-9\u17e0-\u17e9]"                       # a digit: ASCII or Khmer
_SEP = r"(?:[ .\-\u00a0]|[ ]?[()][ ]?)"        # what people put between the digits of a number
_YEAR = "[12\u17e1\u17e2]" + _D + "{3}"
_DATE = (rf"(?<!{_D})\(?(?:{_D}{{1,2}}(?P<s1>[-./ ]){_D}{{1,2}}(?P=s1){_YEAR}"
         rf"|{_YEAR}(?P<s2>[-./]){_D}{{1,2}}(?P=s2){_D}{{1,2}})(?!{_D})")
_PHONE = (rf"(?<!{_D})(?<!{_D}[.,\-])"
          rf"(?:\(\+?{_D}{{1,4}}\)|\+[ ]?\(?{_D}|[0\u17e0]|[8\u17e8][5\u17e5][5\u17e5])(?:{_SEP}?{_D})*")
PHONE_DIGITS_MIN = 8
_EMAIL = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
_LINK = (r"(?:https?://)?(?:[A-Za-z0-9\-]+\.)*(?:facebook\.com|fb\.com|fb\.me|m\.me|messenger\.com"
         r"|t\.me|telegram\.me|wa\.me|tiktok\.com|instagram\.com)/[^\s,;'\"()<>]+")
_HANDLE = r"(?<![A-Za-z0-9_@.])@[A-Za-z][A-Za-z0-9_]{4,}"
_NUMBERS = re.compile(rf"(?P<date>{_DATE})|(?P<phone>{_PHONE})")
_AT = re.compile(rf"{_EMAIL}|{_HANDLE}")
_LINKS = re.compile(_LINK, re.IGNORECASE)

_KHMER_LETTER = frozenset(map(chr, [*range(0x1780, 0x17D4), 0x17DD]))  # not ។ ៖ nor digits
_KHMER_DEPENDENT = frozenset(map(chr, [*range(0x17B4, 0x17D4), 0x17DD]))  # continue a cluster
_COENG = "\u17d2"
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f0-9]+")     # a word in Latin script (or a number)
_DIGIT = re.compile(_D)
_RUN = re.compile(rf"(?<!{_D}){_D}(?:{_SEP}?{_D})*")  # a number, with separators
_NAME_SPLIT = re.compile(r"[\s\u200b,.;:/()\"'\-]+")
_REPEATED = re.compile(re.escape(REMOVED) + r"(?:[\s\u200b]*" + re.escape(REMOVED) + ")+")
# Words before a name that are not names themselves: honorifics and kinship terms, and "name".
HONORIFICS = frozenset({
    "mr", "mrs", "ms", "miss", "dr", "sir", "madam", "mme", "lok", "neak", "srey", "oknha",
    "លោក", "លោកស្រី", "អ្នកស្រី", "អ្នកនាង", "កញ្ញា", "អ្នក", "ឯកឧត្តម", "លោកជំទាវ", "អ៊ំ", "ពូ",
    "មីង", "យាយ", "តា", "បង", "ប្អូន", "ឧកញ៉ា",
})
_MARKERS = tuple(m for m in (*HONORIFICS, "ឈ្មោះ") if not m.isascii())
_MARKER_MAX = max(map(len, _MARKERS)) + 2


def _khmer(text: str) -> bool:
    return any("\u1780" <= ch <= "\u17ff" for ch in text)


def name_parts(name: str) -> list[str]:
    """The parts of a name that identify: two characters or more, with a letter, no honorific."""
    return [p for p in _NAME_SPLIT.split(name.strip())
            if len(p) >= 2 and any(ch.isalpha() for ch in p) and p.casefold() not in HONORIFICS]


def _number_key(digits: str) -> str:
    """A phone number's digits without its country code and leading zeros: 012 345 678,
    +855 12 345 678 and 12345678 are the same number."""
    digits = ascii_digits("".join(_DIGIT.findall(digits))).lstrip("0")
    if digits.startswith("855") and len(digits) > 9:
        digits = digits[3:].lstrip("0")
    return digits


class Scrubber:
    """Removes a case's personal data from its free text (see the module's notes). Built once
    per case: no regular expression of its own, so building it costs next to nothing."""

    def __init__(self, names: Iterable[str] = (), contacts: Iterable[str] = ()) -> None:
        self._latin: dict[str, set[tuple[str, ...]]] = {}  # word sequences, casefolded, by first word
        self._khmer_whole: set[str] = set()        # Khmer names and contacts, as they may be written
        self._khmer_parts: set[str] = set()        # parts of Khmer names
        self._numbers: set[str] = set()            # contacts' phone numbers (``_number_key``)
        for name in {n.strip() for n in names if n and n.strip()}:
            parts = name_parts(name)
            for p in parts:
                if _khmer(p):
                    self._khmer_parts.add(p)
                else:
                    self._add_latin((p.casefold(),))
            self._add_whole(parts)
        for contact in {c.strip() for c in contacts if c and c.strip()}:
            key = _number_key(contact)
            if len(key) >= 6:
                self._numbers.add(key)
            words = [w for w in _NAME_SPLIT.split(contact) if w]
            if len(contact) >= 3 and words:
                self._add_whole(words)
                latin = tuple(w.casefold() for w in _WORD.findall(contact))
                if latin and any(ch.isalpha() for w in latin for ch in w):
                    self._add_latin(latin)

    def _add_latin(self, words: tuple[str, ...]) -> None:
        self._latin.setdefault(words[0], set()).add(words)

    def _add_whole(self, words: list[str]) -> None:
        if words and any(_khmer(w) for w in words):
            for glue in ("", " ", "\u200b"):
                self._khmer_whole.add(glue.join(words))

    def __call__(self, text: str) -> str:
        """``text`` with phone numbers, e-mail addresses, profile links and usernames, and the
        case's own names and contacts, replaced by ``[removed]``."""
        if not text:
            return text
        text = _generic(text)
        spans = self._spans(text)
        if not spans:
            return text
        out, at = [], 0
        for start, end in sorted(spans):
            if start < at:  # overlaps the one before
                if end > at:
                    at = end
                continue
            out += [text[at:start], REMOVED]
            at = end
        out.append(text[at:])
        return _REPEATED.sub(REMOVED, "".join(out))

    def finds(self, text: str) -> bool:
        """Whether ``text`` holds anything this scrubber removes."""
        return bool(text) and self(text) != text

    def _spans(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        if self._numbers:
            spans += [m.span() for m in _RUN.finditer(text) if _number_key(m.group(0)) in self._numbers]
        if self._latin:
            words = list(_WORD.finditer(text))
            folded = [w.group(0).casefold() for w in words]
            for i, first in enumerate(folded):
                for seq in self._latin.get(first, ()):
                    last = i + len(seq) - 1
                    if tuple(folded[i:last + 1]) == seq and all(  # words one after the other
                            not text[words[j].end():words[j + 1].start()].strip() for j in range(i, last)):
                        spans.append((words[i].start(), words[last].end()))
        if self._khmer_whole or self._khmer_parts:
            spans += self._khmer_spans(text)
        return spans

    def _khmer_spans(self, text: str) -> list[tuple[int, int]]:
        """Khmer has no spaces between words: a whole name where it does not split a letter
        cluster; a part of one where it stands alone, or right after "name" or an honorific."""
        spans = []
        for needle in self._khmer_whole | self._khmer_parts:
            part = needle in self._khmer_parts
            at = text.find(needle)
            while at >= 0:
                end = at + len(needle)
                before = text[at - 1] if at else ""
                after = text[end] if end < len(text) else ""
                if part:
                    alone = before not in _KHMER_LETTER and after not in _KHMER_LETTER
                    ok = alone or (after not in _KHMER_DEPENDENT and text[max(0, at - _MARKER_MAX):at]
                                   .rstrip(" \u200b").endswith(_MARKERS))
                else:
                    ok = before != _COENG and after not in _KHMER_DEPENDENT
                if ok:
                    spans.append((at, end))
                at = text.find(needle, at + 1)
        return spans


def _generic(text: str) -> str:
    """``text`` without e-mail addresses, usernames, profile links and phone numbers (each pass
    only where its sign is: most texts have no ``@``, no ``/``)."""
    if "@" in text:
        text = _AT.sub(REMOVED, text)
    if "/" in text:
        text = _LINKS.sub(REMOVED, text)
    return _NUMBERS.sub(_number, text) if _DIGIT.search(text) else text


def _number(match: re.Match[str]) -> str:
    """A phone number is removed; a date, or a number too short to be a phone number, stays."""
    if match.group("date") is not None or sum(ch.isdigit() for ch in match.group(0)) < PHONE_DIGITS_MIN:
        return match.group(0)
    return REMOVED


@lru_cache(maxsize=64)
def scrubber(names: tuple[str, ...] = (), contacts: tuple[str, ...] = ()) -> Scrubber:
    """The ``Scrubber`` of these names and contacts (the last few kept: an export's events come
    case by case)."""
    return Scrubber(names, contacts)


def scrub(text: str, names: Iterable[str] = (), contacts: Iterable[str] = ()) -> str:
    """``text`` without the personal data ``Scrubber`` finds."""
    return scrubber(tuple(names), tuple(contacts))(text)
