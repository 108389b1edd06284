"""Spreadsheets (.xlsx, .xls, .ods): one sheet as a table of text, read with calamine.

python-calamine (Rust) reads the three formats, a formula cell as the value its
application last computed and saved with it, and dates as dates. A cell becomes the text
the CSV path would have read from an export (an integral number without ``.0``, a date
``2026-11-20``, a boolean ``true``), so a sheet is typed exactly like a CSV file:
``02134`` typed into a text cell stays text.

The table in a sheet: a merged range holds its first cell's value in each of its cells;
empty rows and columns around the table are dropped (and empty rows inside it are not
rows); rows above the header that hold fewer than half the table's distinct values (a
title, an export note) are a preamble; whether the first row is a header is decided as
for CSV (:func:`lakegov.convert.dialect.is_header`), unless the dataset says. A bad row's
number is the sheet's row number, as the application shows it.

calamine holds the sheet in memory: a workbook is limited by its size in the ZIP (the
dataset's decompression ratio), not streamed.
"""

from __future__ import annotations

import datetime as dt
import math
import zipfile
from typing import Any

import duckdb
import pyarrow as pa

from lakegov.convert.dialect import is_header
from lakegov.convert.options import DatasetOptions
from lakegov.convert.streams import BOMB_FLOOR
from lakegov.convert.tables import TextColumns
from lakegov.errors import RejectedFile

HEADER_SAMPLE = 50  # data rows the header decision looks at
PREAMBLE_ROWS = 20  # rows looked at for a title above the table
ODS_MIMETYPE = b"application/vnd.oasis.opendocument.spreadsheet"
_ARCHIVE = (
    "the file is a ZIP archive but not a readable workbook (.xlsx, .ods): archives are not "
    "supported; upload each file on its own, compressed with gzip, bzip2 or zstd"
)


def workbook_format(path: str, max_ratio: float) -> str:
    """``xlsx``, ``ods`` or ``xls`` from the file's content; refuses other archives and a
    workbook whose parts would inflate beyond ``max_ratio`` times its size."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if not magic.startswith(b"PK\x03\x04"):
        return "xls"
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            names = {i.filename for i in infos}
            packed = sum(i.compress_size for i in infos)
            unpacked = sum(i.file_size for i in infos)
            if unpacked > max(packed, 1) * max_ratio and unpacked > BOMB_FLOOR:
                raise RejectedFile(
                    "decompression_bomb",
                    f"the workbook's parts inflate to {unpacked} bytes from {packed}, "
                    f"more than {max_ratio:.0f} times",
                )
            if "xl/workbook.xml" in names or "xl/workbook.bin" in names:
                return "xlsx"
            if "mimetype" in names and archive.read("mimetype").strip() == ODS_MIMETYPE:
                return "ods"
    except zipfile.BadZipFile as exc:
        raise RejectedFile("unsupported_format", f"{_ARCHIVE} ({exc})") from exc
    raise RejectedFile("unsupported_format", _ARCHIVE)


def cell_text(value: Any) -> str | None:
    """A cell's value as the text a CSV export would hold (``None``: empty)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _fill_merged(rows: list[list[str | None]], merged: Any) -> None:
    for (r0, c0), (r1, c1) in merged or []:
        if r0 >= len(rows) or c0 >= len(rows[r0]):
            continue
        value = rows[r0][c0]
        for r in range(r0, r1 + 1):
            while r >= len(rows):
                rows.append([])
            row = rows[r]
            if len(row) <= c1:
                row.extend([None] * (c1 + 1 - len(row)))
            for c in range(c0, c1 + 1):
                row[c] = value


ODS_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def ods_merged_ranges(path: str, sheet: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The merged ranges of an ODS sheet, ((first row, first column), (last row, last
    column)), 0-based (calamine reports them for .xlsx and .xls only), from the spans in
    content.xml, streamed."""
    from lxml import etree

    t = f"{{{ODS_TABLE}}}"
    found: list[tuple[tuple[int, int], tuple[int, int]]] = []
    with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
        row = -1
        column = 0
        inside = False
        for event, elem in etree.iterparse(
            content, events=("start", "end"), resolve_entities=False, no_network=True
        ):
            tag = elem.tag
            if tag == f"{t}table":
                if event == "start":
                    inside = elem.get(f"{t}name") == sheet
                elif inside:
                    break
                continue
            if not inside:
                if event == "end":
                    elem.clear()
                continue
            if tag == f"{t}table-row":
                if event == "start":
                    row += 1
                    column = 0
                else:
                    row += int(elem.get(f"{t}number-rows-repeated", "1")) - 1
                    elem.clear()
            elif tag in (f"{t}table-cell", f"{t}covered-table-cell") and event == "start":
                rows = int(elem.get(f"{t}number-rows-spanned", "1"))
                cols = int(elem.get(f"{t}number-columns-spanned", "1"))
                if rows > 1 or cols > 1:
                    found.append(((row, column), (row + rows - 1, column + cols - 1)))
                column += int(elem.get(f"{t}number-columns-repeated", "1"))
    return found


def _preamble(rows: list[tuple[int, list[str | None]]]) -> int:
    """Rows above the table: those, at its top, with fewer than half the distinct values
    of the fullest of the first rows (a title merged across the columns counts once)."""
    distinct = [len({v for v in cells if v is not None}) for _, cells in rows[:PREAMBLE_ROWS]]
    if not distinct:
        return 0
    enough = max(distinct) / 2
    for i, n in enumerate(distinct):
        if n >= enough:
            return i
    return 0


def read_sheet(con: duckdb.DuckDBPyConnection, path: str, options: DatasetOptions) -> TextColumns:
    fmt = workbook_format(path, options.max_decompression_ratio)
    from python_calamine import CalamineError, CalamineWorkbook  # only workbooks need it

    try:
        with open(path, "rb") as f:
            workbook = CalamineWorkbook.from_filelike(f)
        names = workbook.sheet_names
        wanted = options.sheet if options.sheet is not None else (names[0] if names else None)
        if wanted is None or wanted not in names:
            raise RejectedFile(
                "schema_mismatch",
                f"the workbook has no sheet {wanted!r} (its sheets: {', '.join(names)})",
            )
        sheet = workbook.get_sheet_by_name(wanted)
        cells = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges
        if fmt == "ods" and merged is None:
            merged = ods_merged_ranges(path, wanted)
    except CalamineError as exc:
        raise RejectedFile("malformed", f"the {fmt} workbook cannot be read: {exc}") from exc
    rows: list[list[str | None]] = cells  # type: ignore[assignment] # replaced row by row
    for r, row in enumerate(cells):  # in place: each row's values freed as it is read
        rows[r] = [cell_text(v) for v in row]
    _fill_merged(rows, merged)
    # (sheet row number, cells) of the rows holding anything
    kept = [(r + 1, row) for r, row in enumerate(rows) if any(v is not None for v in row)]
    if not kept:
        raise RejectedFile("empty", f"sheet {wanted!r} is empty")
    used = sorted({c for _, row in kept for c, v in enumerate(row) if v is not None})
    first_col, last_col = used[0], used[-1]
    table = [
        (n, [row[c] if c < len(row) else None for c in range(first_col, last_col + 1)])
        for n, row in kept
    ]
    spreadsheet = options.spreadsheet
    skip = spreadsheet.skip_rows
    if skip is not None:
        table = [(n, row) for n, row in table if n > skip]
    else:
        table = table[_preamble(table) :]
    if not table:
        raise RejectedFile("empty", f"sheet {wanted!r} has no rows below row {skip}")
    width = last_col - first_col + 1
    texts = [tuple(v or "" for v in row) for _, row in table]
    header_flag = spreadsheet.header
    if header_flag is None:
        header_flag = len(texts) == 1 or bool(is_header(texts[0], texts[1 : 1 + HEADER_SAMPLE]))
    if header_flag:
        header = list(texts[0])
        table = table[1:]
    else:
        header = [f"col_{i + 1}" for i in range(width)]
    columns = {f"c{i}": [row[i] for _, row in table] for i in range(width)}
    data = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    view = f"sheet_rows_{id(data)}"
    con.register(view, data)
    row_numbers = [n for n, _ in table]

    def lines_of(ordinals: list[int]) -> dict[int, int]:
        return {n: row_numbers[n - 1] for n in ordinals}

    return TextColumns(reader=view, header=header, lines_of=lines_of, format=fmt)
