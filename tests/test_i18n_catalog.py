"""Every user-facing string goes through the catalogs: the template must match the code."""

from __future__ import annotations

import ast
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import LOCALES_DIR, _, translations, use_locale

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}


def code_msgids() -> set[str]:
    found: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT / "bot"), method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


def catalog_msgids(path: Path) -> set[str]:
    with path.open("rb") as fh:
        catalog = read_po(fh)
    return {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}


def test_template_matches_the_code() -> None:
    in_code = code_msgids()
    in_pot = catalog_msgids(LOCALES_DIR / "casebot.pot")
    missing = in_code - in_pot
    stale = in_pot - in_code
    hint = "run: scripts/update-catalogs"
    assert not missing, f"not in the catalog template: {sorted(missing)[:5]}; {hint}"
    assert not stale, f"no longer in the code: {sorted(stale)[:5]}; {hint}"


def test_every_language_has_every_message() -> None:
    in_pot = catalog_msgids(LOCALES_DIR / "casebot.pot")
    for lang in ("en", "km"):
        assert catalog_msgids(LOCALES_DIR / lang / "LC_MESSAGES" / "casebot.po") == in_pot, lang


def test_catalogs_load_without_a_build_step() -> None:
    with use_locale("km"):
        assert _("Resolved")  # falls back to the source text until translated
    assert translations("en") is translations("en")  # compiled once, then cached


def test_messages_are_translated_by_variable() -> None:
    """``_()`` takes a string literal or a variable, never ``TABLE[key]`` or a call: Babel
    versions differ on what they extract from those (2.18 took the key as a message, 2.19 does
    not). Messages defined in a table are marked with ``N_`` and translated with ``label()``."""
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in KEYWORDS and node.args
                    and isinstance(node.args[0], ast.Subscript | ast.Call)):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders


def test_catalogs_hold_no_entry_the_code_lacks() -> None:
    """No junk (a table's key extracted as a message) and no obsolete entries kept."""
    in_code = code_msgids()
    for lang in ("en", "km"):
        path = LOCALES_DIR / lang / "LC_MESSAGES" / "casebot.po"
        assert catalog_msgids(path) <= in_code, lang
        assert "\n#~ " not in path.read_text(encoding="utf-8"), f"{lang}: obsolete entries"
