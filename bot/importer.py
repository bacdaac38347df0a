"""The carried-over backlog: read a CSV or XLSX file, check every row, then import.

``read_table`` turns the file's bytes into a header and numbered rows (or raises ``FileProblem``
with one line saying why the file cannot be read); ``validate`` checks each row against the
units, categories and rules and returns the cases to import and the problems, each with its
line number. Both are pure. ``check_file`` adds what the database knows (references already
imported); ``CaseService.import_cases`` does the import, in one transaction.

Used by ``casebot import`` (``cli_import``, ``write_template``) and by the bot, when a member of
the working group sends it the file (``bot/handlers/importing.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.domain.cases import CaseService
from bot.domain.model import SUMMARY_MAX, TEXT_MAX, ImportedCase
from bot.domain.rules import SOURCES, Status
from bot.domain.scrub import Scrubber
from bot.domain.units import Category, Unit, UnitService
from bot.i18n import _, ngettext, use_locale

# The header of a backlog file, in this order (``casebot import --template`` writes it).
COLUMNS = (
    "external_ref", "received_date", "source", "category", "unit", "summary", "description",
    "citizen_name", "contact", "status", "resolved_date",
)
# The columns a file may leave out (README: "required: no"); a missing one reads as empty cells.
OPTIONAL_COLUMNS = frozenset({"source", "description", "contact", "status", "resolved_date"})
# Columns whose cells are never quoted in a problem (nor any value that holds one of them).
PERSONAL_COLUMNS = ("citizen_name", "contact", "summary", "description")
PERSONAL_MIN = 3  # a shorter personal-data cell ("-", "x") is looked for as the whole value only
REQUIRED_COLUMNS = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)
# Statuses a backlog row may carry (merged cases are not carried over).
IMPORT_STATUSES = (
    Status.NEW, Status.ASSIGNED, Status.IN_PROGRESS, Status.WAITING_INFO, Status.FORWARDED,
    Status.ACKNOWLEDGED, Status.RESOLVED, Status.CLOSED,
)
FINISHED = frozenset({Status.RESOLVED, Status.CLOSED})        # these need a resolved_date
AWAY_STATUSES = frozenset({Status.FORWARDED, Status.ACKNOWLEDGED})  # with another institution
MAX_BYTES = 5 * 1024 * 1024
REF_MAX = 100
NAME_MAX = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UTF8_BOM = b"\xef\xbb\xbf"

Cell = Any  # str, int, float, bool, date, datetime, time or None (XLSX cells)
Problem = tuple[int, str]


class FileProblem(Exception):
    """The file cannot be read as a backlog file; the message is one line saying why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Table:
    header: list[str]                    # normalised: stripped, lower case
    rows: list[tuple[int, list[Cell]]]   # (line number in the file, cells); empty rows left out
    strict_width: bool = False           # CSV: a row of more or fewer fields than the header is an error


# --- reading ---------------------------------------------------------------------------------

def file_kind(file_name: str) -> str | None:
    suffix = Path(file_name).suffix.lower()
    return {".csv": "csv", ".xlsx": "xlsx"}.get(suffix)


def read_table(file_name: str, data: bytes) -> Table:
    """The header and the non-empty rows of a CSV or XLSX file, or ``FileProblem``."""
    kind = file_kind(file_name)
    if kind is None:
        raise FileProblem(_("not a CSV or XLSX file (the name must end in .csv or .xlsx)"))
    if len(data) > MAX_BYTES:
        raise FileProblem(_("the file is larger than {n} MB").format(n=MAX_BYTES // (1024 * 1024)))
    header_line, header, rows, strict = (_read_csv(data) if kind == "csv" else _read_xlsx(data))
    if header is None:
        raise FileProblem(_("the file is empty: it needs a header line and a line per case"))
    names = [_text(h).lstrip("\ufeff").strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise FileProblem(_("missing columns: {names} (in the header, line {n})").format(
            names=", ".join(missing), n=header_line))
    twice = sorted({n for n in names if n in COLUMNS and names.count(n) > 1})
    if twice:
        raise FileProblem(_("columns more than once: {names}").format(names=", ".join(twice)))
    return Table(names, rows, strict)


def _blank(cells: Sequence[Cell]) -> bool:
    return all(_text(c) == "" for c in cells)


def _read_csv(data: bytes) -> tuple[int, list[Cell] | None, list[tuple[int, list[Cell]]], bool]:
    if data.startswith(b"PK\x03\x04"):
        raise FileProblem(_("this is not a CSV file (it looks like an XLSX file named .csv)"))
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileProblem(_("this is not a CSV file (it looks like an old Excel .xls file): save it "
                            "as .xlsx or as “CSV UTF-8 (Comma delimited)”"))
    sample = data[:4096]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (
            sample and max(sample[0::2].count(0), sample[1::2].count(0)) * 4 >= len(sample)):
        raise FileProblem(_("the file is UTF-16 (“Unicode text”), not UTF-8: in Excel, save it as "
                            "“CSV UTF-8 (Comma delimited)”"))
    if b"\x00" in sample:
        raise FileProblem(_("this is not a CSV file: it is not text"))
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FileProblem(_("the file is not UTF-8 (first at line {n}): in Excel, save it as "
                            "“CSV UTF-8 (Comma delimited)”").format(n=line)) from None
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)  # Excel writes ";" in some regions
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[Cell] | None = None
    header_line = 1
    rows: list[tuple[int, list[Cell]]] = []
    line = 1
    try:
        for cells in reader:
            if not _blank(cells):
                if header is None:
                    header, header_line = cells, line
                else:
                    rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FileProblem(_("not a readable CSV file (line {n}): {error}").format(
            n=reader.line_num, error=exc)) from None
    return header_line, header, rows, True


def _read_xlsx(data: bytes) -> tuple[int, list[Cell] | None, list[tuple[int, list[Cell]]], bool]:
    from openpyxl import load_workbook

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = load_workbook(io.BytesIO(data), read_only=False, data_only=True)
    except Exception:  # a zip that is not a workbook, a damaged file, an .xls renamed…
        raise FileProblem(_("not a valid XLSX file: save it again from Excel as .xlsx")) from None
    sheet = book.worksheets[0]
    header: list[Cell] | None = None
    header_line = 1
    rows: list[tuple[int, list[Cell]]] = []
    for line, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = list(values)
        if _blank(cells):
            continue
        if header is None:
            header, header_line = cells, line
        else:
            rows.append((line, cells))
    book.close()
    return header_line, header, rows, False


# --- checking -------------------------------------------------------------------------------

def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == time(0) else cell.isoformat(" ")
    if isinstance(cell, date | time):
        return cell.isoformat()
    return str(cell).strip()


def _shown(value: str, limit: int = 40) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def _date(cell: Cell) -> date | None:
    """A date from an XLSX date cell or a YYYY-MM-DD text; None if it is neither."""
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    if isinstance(cell, str) and _DATE.match(cell.strip()):
        try:
            return date.fromisoformat(cell.strip())
        except ValueError:
            return None
    return None


def _key(value: str) -> str:
    return value.strip().lower().replace(" ", "_").replace("-", "_")


def validate(
    table: Table, units: Sequence[Unit], categories: Sequence[Category], tz: ZoneInfo, now: datetime,
) -> tuple[list[ImportedCase], list[Problem]]:
    """Check every row. Returns the valid rows, as cases to import, and the problems of the
    others: (line number, reason), in line order. A row with a problem is never imported.

    Reasons name the column. They quote the values of references, dates, sources, categories,
    units and statuses, but never a value that holds personal data: a cell of ``PERSONAL_COLUMNS``
    (of any row), a part of the row's citizen name, a phone number (``bot/domain/scrub.py``). A
    CSV row with more or fewer fields than the header (a comma in a text that is not in quotes
    shifts every later cell) gets that one reason and quotes nothing."""
    col = {name: i for i, name in enumerate(table.header) if name in COLUMNS}
    width = len(table.header)
    shifted = {line for line, cells in table.rows if table.strict_width and len(cells) != width}
    rows = [(line, cells) for line, cells in table.rows if line not in shifted]
    check = _RowCheck(col, {u.key.lower(): u for u in units}, {c.key.lower(): c for c in categories},
                      tz, now, _personal_cells(table, col, shifted))
    refs: dict[str, list[int]] = {}
    for line, cells in rows:
        ref = _text(check.get(cells, "external_ref"))
        if ref:
            refs.setdefault(ref, []).append(line)
    # A reference more than once is quoted unless one of its rows holds it as personal data.
    by_line = dict(rows)
    hidden_refs = {ref for ref, lines in refs.items() if len(lines) > 1
                   and any(check.quote(ref, by_line[n]) is None for n in lines)}
    out: list[ImportedCase] = []
    problems: list[Problem] = []
    for line, cells in table.rows:
        if line in shifted:
            problems.append((line, ngettext(
                "{n} field where the header has {columns} (a comma or a line break in a text that "
                "is not in quotes?)",
                "{n} fields where the header has {columns} (a comma or a line break in a text that "
                "is not in quotes?)", len(cells)).format(n=len(cells), columns=width)))
            continue
        found: list[str] = []
        case = check.row(cells, found)
        ref = _text(check.get(cells, "external_ref"))
        if len(refs.get(ref, [])) > 1:
            lines = ", ".join(str(n) for n in refs[ref])
            found.insert(0, _("external_ref appears more than once (lines {lines}; not quoted: it may "
                              "be personal data)").format(lines=lines) if ref in hidden_refs else
                         _("external_ref '{ref}' appears more than once (lines {lines})").format(
                             ref=_shown(ref), lines=lines))
        if found or case is None:
            problems.extend((line, reason) for reason in found)
        else:
            out.append(case)
    return out, problems


def _personal_cells(table: Table, col: dict[str, int], shifted: set[int]) -> frozenset[str]:
    """The cells of the personal-data columns, every row's (``_norm``); of a shifted row every
    cell, since nobody knows which of them hold personal data."""
    out: set[str] = set()
    for line, cells in table.rows:
        chosen = cells if line in shifted else [
            cells[col[c]] for c in PERSONAL_COLUMNS if c in col and col[c] < len(cells)]
        out.update(v for cell in chosen if (v := _norm(_text(cell))))
    return frozenset(out)


@dataclass
class _RowCheck:
    col: dict[str, int]
    units: dict[str, Unit]
    categories: dict[str, Category]
    tz: ZoneInfo
    now: datetime
    personal: frozenset[str]  # the cells of PERSONAL_COLUMNS, every row's (``_norm``)

    def get(self, cells: list[Cell], name: str) -> Cell:
        i = self.col.get(name)
        return cells[i] if i is not None and i < len(cells) else None

    def quote(self, value: str, cells: list[Cell]) -> str | None:
        """``value`` as a problem may quote it (cut to 40 characters), or None when it may be
        personal data: what it shows holds a cell of a personal-data column (of any row); it holds
        one of the row's or is held in one; it holds a part of the row's citizen name, a phone
        number, an e-mail address… (``Scrubber``)."""
        norm, shown = _norm(value), _shown(value)
        if norm in self.personal:
            return None
        visible = _norm(shown.removesuffix("…"))  # what the problem would show: none of it personal
        if any(visible[i:j] in self.personal for i in range(len(visible))
               for j in range(i + PERSONAL_MIN, len(visible) + 1)):
            return None
        own = [_text(self.get(cells, c)) for c in PERSONAL_COLUMNS]
        if any(p and (p in norm or norm in p) for p in map(_norm, own)):
            return None
        if Scrubber([own[0]], [own[1]]).finds(value):
            return None
        return shown

    def row(self, cells: list[Cell], found: list[str]) -> ImportedCase | None:
        """The row as a case to import, or None with the reasons added to ``found``."""
        def text(name: str, limit: int, required: bool) -> str:
            value = _text(self.get(cells, name))
            if required and not value:
                found.append(_("{column} is empty").format(column=name))
            elif len(value) > limit:
                found.append(_("{column} is longer than {n} characters").format(column=name, n=limit))
            return value

        ref = text("external_ref", REF_MAX, True)
        received = self.day(cells, "received_date", True, found)
        source_text = _text(self.get(cells, "source"))
        source = _key(source_text) or "other"
        if source not in SOURCES:
            value = self.quote(source_text, cells)
            found.append(_("unknown source (not quoted: it may be personal data; one of: {keys})").format(
                keys=", ".join(SOURCES)) if value is None else _(
                "unknown source '{value}' (one of: {keys})").format(value=value, keys=", ".join(SOURCES)))
        category_key = text("category", 100, True)
        category = self.categories.get(category_key.lower()) if category_key else None
        if category_key and category is None:
            value = self.quote(category_key, cells)
            found.append(_("unknown category (not quoted: it may be personal data)") if value is None
                         else _("unknown category '{key}'").format(key=value))
        unit_key = text("unit", 100, True)
        unit = self.units.get(unit_key.lower()) if unit_key else None
        if unit_key and unit is None:
            value = self.quote(unit_key, cells)
            found.append(_("unknown unit (not quoted: it may be personal data)") if value is None
                         else _("unknown unit '{key}'").format(key=value))
        summary = text("summary", SUMMARY_MAX, True)
        description = text("description", TEXT_MAX, False)
        name = text("citizen_name", NAME_MAX, True)
        contact = text("contact", NAME_MAX, False)
        status_text = _text(self.get(cells, "status"))
        status: Status | None = Status.NEW
        if status_text:
            status = next((s for s in IMPORT_STATUSES if s.value == _key(status_text)), None)
            if status is None:
                value = self.quote(status_text, cells)
                keys = ", ".join(IMPORT_STATUSES)
                found.append(_("unknown status (not quoted: it may be personal data; one of: {keys})").format(
                    keys=keys) if value is None else _("unknown status '{value}' (one of: {keys})").format(
                    value=value, keys=keys))
        resolved = self.day(cells, "resolved_date", False, found)
        if status in FINISHED and _text(self.get(cells, "resolved_date")) == "":
            found.append(_("status {status} needs a resolved_date").format(status=status))
        if status is not None and status not in FINISHED and resolved is not None:
            found.append(_("resolved_date must be empty when the status is {status}").format(
                status=status))
        if resolved is not None and received is not None and resolved < received:
            found.append(_("resolved_date is before received_date"))
        if unit is not None and status is not None:
            if unit.kind == "external" and status not in AWAY_STATUSES:
                found.append(_("unit '{key}' is another institution: only the statuses forwarded "
                               "and acknowledged fit it").format(key=unit.key))
            elif unit.kind != "external" and status in AWAY_STATUSES:
                found.append(_("status {status} needs a unit of kind external (another "
                               "institution)").format(status=status))
        if found or received is None or category is None or unit is None or status is None:
            return None
        received_at = min(_noon(received, self.tz), self.now)
        resolved_at = None if resolved is None else max(received_at, min(_noon(resolved, self.tz), self.now))
        return ImportedCase(
            external_ref=ref, received_at=received_at, source=source, category_id=category.id,
            unit_id=unit.id, summary=summary, description=description, citizen_name=name,
            citizen_contact=contact, status=status, resolved_at=resolved_at,
        )

    def day(self, cells: list[Cell], name: str, required: bool, found: list[str]) -> date | None:
        raw = self.get(cells, name)
        if _text(raw) == "":
            if required:
                found.append(_("{column} is empty").format(column=name))
            return None
        value = _date(raw)
        if value is None:
            shown = self.quote(_text(raw), cells)
            found.append(_("{column} is not a date like 2026-04-30 (not quoted: it may be personal "
                           "data)").format(column=name) if shown is None else _(
                "{column}: '{value}' is not a date like 2026-04-30").format(column=name, value=shown))
            return None
        if value > self.now.astimezone(self.tz).date():
            found.append(_("{column} {value} is in the future").format(column=name, value=value.isoformat()))
            return None
        return value


def _noon(day: date, tz: ZoneInfo) -> datetime:
    """A received or resolved date is a local date: stored as noon local time, in UTC."""
    return datetime.combine(day, time(12, 0), tzinfo=tz).astimezone(UTC)


# --- with the database ------------------------------------------------------------------------

@dataclass
class Checked:
    """What a file holds: valid rows, those already imported, and the problems."""

    file_name: str
    rows: list[ImportedCase]
    problems: list[Problem]
    checked: int                                   # non-empty rows
    known: set[str] = field(default_factory=set)   # references already imported

    @property
    def new_rows(self) -> list[ImportedCase]:
        return [r for r in self.rows if r.external_ref not in self.known]

    @property
    def rejected(self) -> int:
        return len({line for line, _reason in self.problems})

    def summary(self) -> str:
        return ngettext(
            "checked {n} row: {new} to import, {known} already imported, {bad} rejected",
            "checked {n} rows: {new} to import, {known} already imported, {bad} rejected",
            self.checked,
        ).format(n=self.checked, new=len(self.new_rows), known=len(self.rows) - len(self.new_rows),
                 bad=self.rejected)

    def problem_lines(self) -> list[str]:
        return [_("line {n}: {reason}").format(n=line, reason=reason) for line, reason in self.problems]


async def check_file(
    file_name: str, data: bytes, units: UnitService, cases: CaseService, tz: ZoneInfo, now: datetime,
) -> Checked:
    """Read and check a backlog file (``FileProblem`` if it cannot be read)."""
    table = await asyncio.to_thread(read_table, file_name, data)  # a workbook takes a moment
    # Checking thousands of rows (and whether what a problem would quote is personal data) takes
    # a moment too: not on the event loop either.
    rows, problems = await asyncio.to_thread(validate, table, await units.all(), await units.categories(),
                                             tz, now)
    known = await cases.known_external_refs([r.external_ref for r in rows])
    return Checked(file_name, rows, problems, len(table.rows), known)


# --- the command line ---------------------------------------------------------------------------

def write_template(path: str) -> int:
    """``casebot import --template FILE``: an empty backlog file with exactly the header."""
    target = Path(path)
    kind = file_kind(target.name)
    if kind is None:
        print(f"{path}: " + _("not a CSV or XLSX file (the name must end in .csv or .xlsx)"),
              file=sys.stderr)
        return 2
    if target.exists():
        print(f"{path}: " + _("the file exists already; give a new name"), file=sys.stderr)
        return 2
    try:
        if kind == "csv":
            # UTF-8 with a BOM and CRLF, as Excel writes "CSV UTF-8" (and so opens Khmer text right).
            with target.open("w", encoding="utf-8-sig", newline="") as fh:
                csv.writer(fh, lineterminator="\r\n").writerow(COLUMNS)
        else:
            from openpyxl import Workbook
            from openpyxl.styles import Font

            book = Workbook()
            sheet = book.active
            sheet.title = "backlog"
            sheet.append(list(COLUMNS))
            for cell in sheet[1]:
                cell.font = Font(bold=True)
                # References and phone numbers stay text (Excel would drop a leading 0).
                if cell.value in ("external_ref", "contact"):
                    sheet.column_dimensions[cell.column_letter].number_format = "@"
                sheet.column_dimensions[cell.column_letter].width = max(14, len(str(cell.value)) + 4)
            sheet.freeze_panes = "A2"
            book.save(target)
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(_("wrote {path}: the header of a backlog file ({n} columns)").format(path=path, n=len(COLUMNS)))
    return 0


async def cli_import(settings: Settings, args: argparse.Namespace) -> int:
    """``casebot import FILE [--dry-run] [--skip-invalid]``.

    Exit 0: done (or nothing to do); 1: rows were rejected (nothing imported unless
    ``--skip-invalid``); 2: the file cannot be read."""
    with use_locale(settings.default_language):
        return await _cli_import(settings, args)


async def _cli_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.domain.cases import SYSTEM
    from bot.domain.people import PeopleService

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        table = read_table(path.name, data)
    except FileProblem as exc:
        print(f"{path}: {exc.message}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    db = await Database.open(settings.database)
    try:
        units = UnitService(db, settings)
        await units.sync_from_config()
        people = PeopleService(db, settings, units)
        cases = CaseService(db, settings, units, people, lambda: datetime.now(UTC))
        rows, problems = validate(table, await units.all(), await units.categories(), settings.tz, now)
        known = await cases.known_external_refs([r.external_ref for r in rows])
        checked = Checked(path.name, rows, problems, len(table.rows), known)
        for line in checked.problem_lines():
            print(line)
        print(checked.summary())
        if args.dry_run:
            print(_("dry run: nothing imported"))
        elif problems and not args.skip_invalid:
            print(_("nothing imported: correct the rejected rows, or import the others with "
                    "--skip-invalid"))
        elif checked.new_rows:
            created, _skipped = await cases.import_cases(SYSTEM, checked.new_rows, now)
            print(ngettext("imported {n} case", "imported {n} cases", len(created)).format(n=len(created))
                  + (f" (#{created[0]}–#{created[-1]})" if created else ""))
        else:
            print(_("nothing new to import"))
    finally:
        await db.close()
    return 1 if problems else 0
