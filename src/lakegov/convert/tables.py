"""Landed files that are tables of text once read: XML records, spreadsheet sheets and
fixed-width lines.

Each reader turns its file into :class:`TextColumns`: a DuckDB table expression whose
columns ``c0``, ``c1``... are text, the column names, and the rows it could not read
(with their line or sheet row). The engine then types and writes them exactly as it does
CSV text (the lattice of :mod:`lakegov.schema`, a declared schema, the bad-row policy), so
leading zeros stay text and a late value that does not fit widens its column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from lakegov.convert.options import DatasetOptions

TEXT_TABLE_FORMATS = ("xml", "xlsx", "xls", "ods", "fixed_width")
SPREADSHEET_FORMATS = ("xlsx", "xls", "ods")


@dataclass(frozen=True)
class UnreadRow:
    """A row the reader could not read: its line (or sheet row), reason class and text."""

    line: int
    code: str
    reason: str
    raw: str


@dataclass
class TextColumns:
    """A file read as text columns ``c0``... by ``reader`` (a DuckDB table expression
    yielding those columns and no other).

    ``lines_of`` maps 1-based record numbers (in ``reader``'s order) to the lines (XML,
    fixed-width) or sheet rows they come from. ``nested``: columns holding JSON text of a
    list of structs (XML's repeated elements), already typed by the reader, written with
    that type once the other columns are typed."""

    reader: str
    header: list[str]
    lines_of: Callable[[list[int]], dict[int, int]]
    unread: list[UnreadRow] = field(default_factory=list)
    nested: dict[str, pa.DataType] = field(default_factory=dict)
    format: str = ""


def read_text_columns(
    fmt: str, con: duckdb.DuckDBPyConnection, path: str, options: DatasetOptions, workdir: str
) -> TextColumns:
    """The file at ``path`` (decompressed; text transcoded to UTF-8 except XML, which
    declares its own encoding) as :class:`TextColumns`, for one of
    :data:`TEXT_TABLE_FORMATS`. Raises :class:`~lakegov.errors.RejectedFile`."""
    if fmt == "xml":
        from lakegov.convert.xml import read_xml

        return read_xml(con, path, options, workdir)
    if fmt in SPREADSHEET_FORMATS:
        from lakegov.convert.spreadsheet import read_sheet

        return read_sheet(con, path, options)
    from lakegov.convert.fixed_width import read_fixed_width

    return read_fixed_width(con, path, options)
