"""Khmer as a ministry writes it: the mechanical rules of docs/glossary.md ("Register", the rules
marked ✔) and its checked terms, on every entry of the Khmer catalog."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_i18n_khmer import ENTITY, HTML_TAG, PLACEHOLDER, ids_of, khmer, strings_of

GLOSSARY = Path(__file__).resolve().parent.parent / "docs" / "glossary.md"
KHMER_CHAR = r"[\u1780-\u17FF]"
# Nouns that hold អ្នក without addressing the reader (docs/glossary.md, "Register").
NOUNS_WITH_NEAK = ("លោកអ្នក", "អ្នកត្រួតពិនិត្យ", "អ្នកគ្រប់គ្រង", "អ្នកណា", "អ្នកដែល", "អ្នកប្រើប្រាស់",
                   "អ្នកស្រី", "អ្នកជិតខាង")
WORDS_WITH_VA = ("ឱវាទ", "វិវាទ", "ស្វាគមន៍", "សង្វាក់")  # វា inside a word: no pronoun


def entries() -> list[tuple[str, str]]:
    """(English, Khmer) of every translated message (each plural form)."""
    out = []
    for m in khmer():
        if m.id:
            english = " ".join(ids_of(m))
            out += [(english, s) for s in strings_of(m) if s]
    return out


def markup_out(text: str) -> str:
    """The text without what is not prose: placeholders, tags, entities (whose ";" is theirs)."""
    for pattern in (PLACEHOLDER, HTML_TAG, ENTITY, re.compile(r"<[^<>]*>")):
        text = pattern.sub(" ", text)
    return text


def test_the_catalog_is_there() -> None:
    assert len(entries()) > 500


def test_no_latin_punctuation_inside_khmer_sentences() -> None:
    problems = []
    for _english, km in entries():
        prose = markup_out(km)
        if ";" in prose:
            problems.append(f"Latin ';' (two sentences, or ' · '): {km!r}")
        for mark in re.findall(f"{KHMER_CHAR}([.:])", prose):
            problems.append(f"Latin {mark!r} after a Khmer word (។ or ៖): {km!r}")
    assert not problems, "\n".join(problems)


def test_active_voice_no_travbaan_passive() -> None:
    passive = [km for _english, km in entries() if "ត្រូវបាន" in km]
    assert not passive, "\n".join(passive)


def test_the_reader_is_lok_neak() -> None:
    problems = []
    for _english, km in entries():
        rest = km
        for noun in NOUNS_WITH_NEAK:
            rest = rest.replace(noun, "")
        if "អ្នក" in rest:
            problems.append(km)
    assert not problems, "\n".join(problems)


def test_no_va_for_a_case_or_a_thing() -> None:
    problems = []
    for _english, km in entries():
        rest = km
        for word in WORDS_WITH_VA:
            rest = rest.replace(word, "")
        if "វា" in rest:
            problems.append(km)
    assert not problems, "\n".join(problems)


def checked_terms() -> list[tuple[str, str]]:
    """The glossary's last table: (English word, Khmer term with … for any words between)."""
    text = GLOSSARY.read_text(encoding="utf-8")
    section = text.split("## Checked terms", 1)[1]
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", section, re.M)
    return [(en.strip(), km.strip()) for en, km in rows if not en.startswith(("English", "---"))]


def english_words(text: str) -> str:
    """The English prose of a message: no placeholders, tags, commands, keywords or file columns."""
    text = markup_out(text)
    text = re.sub(r"/[a-z_]+", " ", text)        # command names (/case)
    text = re.sub(r"\b\w+_\w+\b", " ", text)      # keywords and columns (in_progress, resolved_date)
    return re.sub(r"\bcasebot\b", " ", text)


def stem(term: str) -> re.Pattern[str]:
    """The English word and its forms (cases, verified, verification, merged, escalating…)."""
    if term.endswith("y"):
        forms = re.escape(term[:-1]) + r"(?:y|ies|ied|ication|ications)"
    elif term.endswith("e"):
        forms = re.escape(term) + r"(?:s|d)?|" + re.escape(term[:-1]) + r"(?:ing|ion|ions|ment|ments)"
    else:
        forms = re.escape(term) + r"(?:s|es|ed|ing|ment|ments)?"
    return re.compile(rf"\b(?:{forms})\b", re.I)


def test_the_glossary_terms_are_used() -> None:
    terms = checked_terms()
    assert len(terms) > 25 and ("case", "ករណី") in terms
    problems = []
    for english, km in entries():
        words = english_words(english)
        for en, term in terms:
            found = stem(en).search(words)
            if found and found.group() not in km:  # (a keyword kept in Latin script is no term)
                pattern = ".*".join(re.escape(part) for part in term.split("…"))
                if not re.search(pattern, km):
                    problems.append(f"{en!r} → {term!r}: {english!r} -> {km!r}")
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_for() -> None:
    """Each check fails on the faults the issue found."""
    assert "ត្រូវបាន" in "#1 មិនទាន់ត្រូវបាន {unit} បញ្ជាក់ការទទួល"
    assert re.search(f"{KHMER_CHAR}[.:]", markup_out("ឯកសារមានរួចហើយ: សូមផ្ដល់ឈ្មោះថ្មី"))
    assert ";" in markup_out("តាម {channel}; តាមដានត្រឹម {when}")
    assert ";" not in markup_out("/case &lt;លេខ&gt;")  # an entity's ; is no punctuation
    rest = "តើអ្នកចង់កែប្រែអ្វី?"
    for noun in NOUNS_WITH_NEAK:
        rest = rest.replace(noun, "")
    assert "អ្នក" in rest
    assert stem("verify").search("Verify by {when}") and stem("case").search("Cases and events")
    assert stem("verify").search("awaiting verification") and stem("escalate").search("escalated")
    found = stem("note").search("not noted")
    assert found is not None and found.group() == "noted" and not stem("note").search("nothing, not")
    assert not stem("case").search(english_words("/case <number> · casebot"))
