"""XLSX written as a stream: one sheet after another, a row at a time, straight into the zip.

openpyxl (in its write-only mode) and XlsxWriter (in its constant-memory mode) both stream too, but
they build an object per cell and serialise it through a general XML writer: several µs a cell
(XlsxWriter about as much as openpyxl with lxml), so the export of 100k cases with their half a
million events (some 6M cells) took 49 s. The export needs a small, fixed part of the format,
which this writes directly as text, six times faster: inline strings, numbers, booleans, dates
and times as date cells, a bold header row kept in view, and text that a spreadsheet app would
read as a formula marked as text (Excel's "quote prefix": shown as typed, with no visible
apostrophe, and kept as text when the cell is edited). openpyxl reads these files back in the
tests, LibreOffice opens them; reading XLSX files (the backlog import) is openpyxl's.

Nothing is held but the rows not yet compressed: memory stays flat whatever the size.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

# What XML 1.0 cannot hold (openpyxl refuses these too): control characters but tab, LF and CR.
ILLEGAL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheet apps may run as a formula
MAX_ROWS = 1_048_576        # a sheet holds no more (the format's limit)
MAX_TEXT = 32_767           # nor longer text in a cell
_EPOCH = datetime(1899, 12, 30)
_FLUSH = 256                # rows gathered before they go to the zip

# Cell styles (cellXfs in styles.xml, by index): 1 date and time, 2 date, 3 text shown as typed
# (quote prefix), 4 the header (bold).
_XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_OOXML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_FONT = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
_XF = 'fontId="0" fillId="0" borderId="0" xfId="0"'
_STYLES = (
    f'{_XML}<styleSheet xmlns="{_MAIN}">'
    '<numFmts count="2"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/>'
    '<numFmt numFmtId="165" formatCode="yyyy-mm-dd"/></numFmts>'
    f'<fonts count="2"><font>{_FONT}</font><font><b/>{_FONT}</font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    "<borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    f'<cellXfs count="5"><xf numFmtId="0" {_XF}/>'
    f'<xf numFmtId="164" {_XF} applyNumberFormat="1"/>'
    f'<xf numFmtId="165" {_XF} applyNumberFormat="1"/>'
    f'<xf numFmtId="0" {_XF} quotePrefix="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>")
_ROOT_RELS = (f'{_XML}<Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
              f'Type="{_DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_SHEET_START = (f'{_XML}<worksheet xmlns="{_MAIN}">'
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
                '<sheetFormatPr defaultRowHeight="15"/><sheetData>')
_SHEET_END = "</sheetData></worksheet>"


def column_name(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    name, n = "", index + 1
    while n:
        n, r = divmod(n - 1, 26)
        name = chr(65 + r) + name
    return name


_LEADING = "".join(chr(c) for c in range(32) if chr(c) not in "\t\r")  # skipped before a formula
_ILLEGAL = ILLEGAL_CHARACTERS.sub


def looks_like_formula(text: str) -> bool:
    """Whether a spreadsheet app could run the text as a formula (OWASP "CSV injection"), also
    when control characters come first."""
    return text.lstrip(_LEADING).startswith(FORMULA_STARTS)


def _serial(value: datetime | date) -> float:
    """Days since Excel's epoch, of the wall time: a naive time as given, an aware one in its
    own zone (a spreadsheet has no time zones: give the reader's local time)."""
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0))
    # Between two times of the same zone, Python subtracts wall times.
    delta = value - (_EPOCH if value.tzinfo is None else _EPOCH.replace(tzinfo=value.tzinfo))
    return delta.days + (delta.seconds + delta.microseconds / 1e6) / 86400


_CACHED, _CACHE_SIZE = 40, 2_000  # texts this short are kept as cells, so many of them


def _text_cell(value: str, header: bool) -> str:
    """A text cell, after its reference: XML's illegal characters dropped, escaped, marked bold
    (the header) or as text (what could be read as a formula)."""
    text = _ILLEGAL("", value)[:MAX_TEXT]
    style = ' s="4"' if header else ' s="3"' if text.lstrip(_LEADING).startswith(FORMULA_STARTS) else ""
    if "&" in text or "<" in text or ">" in text:
        text = escape(text)
    return f'{style} t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'


class XlsxStream:
    """Sheets written one after the other, each a row at a time; ``close`` finishes the file,
    ``abort`` removes what was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None  # created with the first sheet
        self._titles: list[str] = []
        self._part: IO[bytes] | None = None
        self._rows: list[str] = []
        self._n = 0
        self._columns: list[str] = []
        self._texts: dict[str, str] = {}  # short texts as cells (less their reference)

    def sheet(self, title: str, header: Sequence[str]) -> Callable[[Sequence[object]], None]:
        """Start the next sheet with a bold header row; returns the function that appends a row
        (None: an empty cell; str, int, float, bool, date or datetime: a cell of that kind)."""
        self._end_sheet()
        title = re.sub(r"[\[\]:*?/\\]", "_", title)[:31] or f"Sheet{len(self._titles) + 1}"
        if self._zip is None:
            # zlib's default level: level 1 saves 15% of the time but makes the file 25% larger,
            # and Telegram sends files of at most 50 MB (100k cases with their events: 35 MB).
            self._zip = zipfile.ZipFile(self.path, "w", zipfile.ZIP_DEFLATED, compresslevel=6)
        self._titles.append(title)
        self._part = self._zip.open(f"xl/worksheets/sheet{len(self._titles)}.xml", "w", force_zip64=True)
        self._part.write(_SHEET_START.encode())
        self._n = 0
        self._columns = [column_name(i) for i in range(max(len(header), 26))]
        self._row(header, header=True)
        return self._row

    def _row(self, values: Sequence[object], *, header: bool = False) -> None:
        if self._part is None:
            raise RuntimeError("no sheet started")
        if self._n >= MAX_ROWS:
            raise ValueError(f"a sheet holds at most {MAX_ROWS:,} rows")
        self._n += 1
        n = self._n
        while len(self._columns) < len(values):
            self._columns.append(column_name(len(self._columns)))
        columns = self._columns
        cells = []
        texts = self._texts
        last = len(values) - 1
        for i, v in enumerate(values):
            # The common kinds first, by their exact type: this is the export's hot loop.
            if type(v) is str and v:
                tail = texts.get(v) if not header else None
                if tail is None:
                    tail = _text_cell(v, header)
                    if len(v) <= _CACHED and not header:  # statuses, keys, names: again and again
                        if len(texts) >= _CACHE_SIZE:
                            texts.clear()
                        texts[v] = tail
                cells.append(f'<c r="{columns[i]}{n}"{tail}')
            elif type(v) is int:
                cells.append(f'<c r="{columns[i]}{n}"><v>{v}</v></c>')
            elif type(v) is datetime:
                cells.append(f'<c r="{columns[i]}{n}" s="1"><v>{_serial(v)!r}</v></c>')
            elif v is None or v == "":
                if i == last:  # an empty cell, so that every row spans the header (for readers
                    cells.append(f'<c r="{columns[i]}{n}"/>')  # that size rows by their cells)
            else:
                cells.append(self._other(f"{columns[i]}{n}", v))
        self._rows.append(f'<row r="{n}">{"".join(cells)}</row>')
        if len(self._rows) >= _FLUSH:
            self._flush()

    @staticmethod
    def _other(ref: str, v: object) -> str:
        """A cell of a less common kind (a subclass of the common ones included)."""
        if isinstance(v, str):
            return f'<c r="{ref}"{_text_cell(v, False)}' if v else f'<c r="{ref}"/>'
        if isinstance(v, bool):
            return f'<c r="{ref}" t="b"><v>{int(v)}</v></c>'
        if isinstance(v, int):
            return f'<c r="{ref}"><v>{int(v)}</v></c>'
        if isinstance(v, float):
            return (f'<c r="{ref}"><v>{v!r}</v></c>' if math.isfinite(v)
                    else f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>')
        if isinstance(v, datetime):
            return f'<c r="{ref}" s="1"><v>{_serial(v)!r}</v></c>'
        if isinstance(v, date):
            return f'<c r="{ref}" s="2"><v>{_serial(v)!r}</v></c>'
        raise TypeError(f"cannot write a {type(v).__name__} to a cell")

    def _flush(self) -> None:
        if self._part is not None and self._rows:
            self._part.write("".join(self._rows).encode())
        self._rows.clear()

    def _end_sheet(self) -> None:
        if self._part is not None:
            self._flush()
            self._part.write(_SHEET_END.encode())
            self._part.close()
            self._part = None

    def close(self) -> None:
        """Finish the workbook: its parts besides the sheets."""
        self._end_sheet()
        if not self._titles:
            self.sheet("Sheet1", [])
            self._end_sheet()
        n = len(self._titles)
        names = [escape(t, {'"': "&quot;"}) for t in self._titles]
        sheets = "".join(f'<sheet name="{name}" sheetId="{i}" r:id="rId{i}"/>'
                         for i, name in enumerate(names, 1))
        z = self._zip
        assert z is not None  # a sheet was started above
        z.writestr("[Content_Types].xml", (
            f'{_XML}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_OOXML}.sheet.main+xml"/>'
            f'<Override PartName="/xl/styles.xml" ContentType="{_OOXML}.styles+xml"/>'
            + "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" '
                      f'ContentType="{_OOXML}.worksheet+xml"/>' for i in range(1, n + 1))
            + "</Types>"))
        z.writestr("_rels/.rels", _ROOT_RELS)
        z.writestr("xl/workbook.xml", (
            f'{_XML}<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}">'
            f"<sheets>{sheets}</sheets></workbook>"))
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'{_XML}<Relationships xmlns="{_RELS}">'
            + "".join(f'<Relationship Id="rId{i}" Type="{_DOC_RELS}/worksheet" '
                      f'Target="worksheets/sheet{i}.xml"/>' for i in range(1, n + 1))
            + f'<Relationship Id="rId{n + 1}" Type="{_DOC_RELS}/styles" Target="styles.xml"/>'
              "</Relationships>"))
        z.writestr("xl/styles.xml", _STYLES)
        z.close()

    def abort(self) -> None:
        """Stop on an error: the half-written file is removed."""
        if self._zip is None:
            return  # nothing written
        try:
            if self._part is not None:
                self._part.close()
                self._part = None
            self._zip.close()
        finally:
            self._zip = None
            self.path.unlink(missing_ok=True)
