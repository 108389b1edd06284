"""The converter: one landed file in, one Parquet file out, on DuckDB.

Reading. The source is read forwards once, through a byte limit (``too_large``), a
decompressor (gzip, bzip2, zstd, chosen by magic bytes) that stops a decompression bomb
while it streams, and for text a transcoder to UTF-8 (BOM dropped, declared encodings
decoded), into a spool file in ``workdir`` (``/tmp`` on Lambda); a local plain UTF-8 file
is read in place. DuckDB reads it with every vCPU the function has, under a memory limit
(:data:`DEFAULT_MEMORY_LIMIT`, spilling to a directory of its own in the temp dir), and
writes Parquet with ``COPY`` (row groups of DuckDB's default size, its default codec); its
database is kept open for the next file when the caller passes a
:class:`~lakegov.convert.databases.DuckDBPool` (the convert function does).

Types. DuckDB alone would fail on, or silently round, what lakegov promises to keep, so
lakegov's layer decides the types and DuckDB checks them:

- CSV, with the dialect from :mod:`lakegov.convert.dialect`, is read with every column as
  text. The types come from the lattice of :mod:`lakegov.schema` over the first
  :data:`SAMPLE_ROWS` rows, at least the dataset's previous types (leading zeros and hex
  stay text, integers beyond int64 are decimal(38,0), a float column holding an integer a
  float64 would round is text), and each column is converted in the ``SELECT`` by an
  expression that raises on any value that does not fit exactly. Such a value, however
  late in the file, stops the ``COPY``; the column is widened on the lattice to hold it
  and the file is converted again. Nothing is lost and nothing fails.
- JSON is read by DuckDB's reader with its structure from a sample, then from every
  record, when that structure is safe (no integer beyond int64, no value of mixed types,
  no float that could round an integer inside a struct; top-level floats are checked like
  CSV ones). Otherwise, when the read fails anyway, or with a declared schema, lakegov
  types the records on the lattice and DuckDB reads them with those exact types.
- XML records, a spreadsheet's sheet and fixed-width lines are read into text columns by
  :mod:`lakegov.convert.tables` and typed exactly as CSV text is (XML's repeated elements
  are lists of structs, typed by the reader on the same lattice).
- A declared schema is enforced: a value that does not fit, or a null in a non-nullable
  column, is a bad row (``schema_mismatch``); an undeclared column, or a missing
  non-nullable one, rejects the file.

Bad rows (ragged CSV rows, invalid UTF-8, values not fitting a declared schema, malformed
JSON lines) carry their physical line number (for JSON arrays: the record number): DuckDB
reports ragged and undecodable rows with their byte position (``store_rejects``), and
lakegov maps positions and record numbers to lines. CSV rows DuckDB alone would load with
shifted values are bad rows too: one field too many with an empty last one is caught by
the typed read itself (it reads one padded column more), a quote inside an unquoted field
by a byte search over the file before it; when either finds one, the lines are scanned,
set aside and emptied in a copy that is read instead. The dataset's policy decides: set them
aside as JSON Lines and load the good rows (``exceptions``, the default), unless more than
``max_bad_row_fraction`` of the rows are bad; or reject the file (``reject``).

The engine writes only to ``sink`` (and temporary files in ``workdir``, removed at the
end); it never seeks the source. When ``sink`` is an empty local file opened for writing,
DuckDB writes the Parquet file at its path (once, no copy); otherwise it is written in
``workdir`` and copied to ``sink``.
"""

from __future__ import annotations

import array
import codecs
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import shutil
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lakegov.convert.avro import avro_batches
from lakegov.convert.databases import DuckDBPool
from lakegov.convert.dialect import CsvDialect, sniff_csv_dialect
from lakegov.convert.options import DatasetOptions
from lakegov.convert.sql import (
    WIDEN,
    fits,
    identifier,
    lines_of_file,
    literal,
    typed_text,
    widen_request,
)
from lakegov.convert.streams import (
    READ_CHUNK,
    UTF8_BOM,
    UTF16_BOMS,
    DecompressedReader,
    LimitedReader,
    StreamStats,
    detect_compression,
    utf8_chunks,
)
from lakegov.convert.tables import (
    SPREADSHEET_FORMATS,
    TEXT_TABLE_FORMATS,
    TextColumns,
    read_text_columns,
)
from lakegov.errors import RejectedFile
from lakegov.layout import DELIMITER_BY_EXTENSION, normalize_identifier, split_file_name
from lakegov.schema import (
    LIST_ITEM,
    ColumnPath,
    FloatText,
    SchemaDiff,
    change_allowed,
    compare_schemas,
    duckdb_type,
    join_types,
    json_value_type,
    schema_fingerprint,
    texts_type,
    widen_for_text,
)

ROW_GROUP_ROWS = 122_880  # DuckDB's default: bounded memory, same size as its COPY
SAMPLE_ROWS = 20_480  # rows typed before the file is read whole (DuckDB's sniffer sample)
HEAD_BYTES = 4 * 1024 * 1024
MAX_REPORTED_BAD_ROWS = 100
REJECT_LINES = 10
MAX_RETYPES = 64
MAX_STRAY_QUOTES = 20  # re-reads after a quote that never closes; more rejects the file
DEFAULT_MEMORY_LIMIT = "320MB"
PARQUET_MAGIC = b"PAR1"
AVRO_MAGIC = b"Obj\x01"
TRANSCODED_FORMATS = ("csv", "json", "fixed_width")  # read as UTF-8 text (XML declares its own)


@dataclass(frozen=True)
class BadRow:
    """A row that could not be converted: where, which class, why."""

    line: int
    reason_code: str
    reason: str


@dataclass
class ConversionResult:
    """What one conversion did. ``schema`` is the Parquet file's schema."""

    rows_in: int
    rows_out: int
    bad_row_count: int
    bad_rows: list[BadRow]  # the first MAX_REPORTED_BAD_ROWS
    schema: pa.Schema
    schema_fingerprint: str
    schema_diff: SchemaDiff
    format: str
    compression: str | None
    bytes_in: int
    bytes_decompressed: int
    output_bytes: int
    row_groups: int
    exceptions_written: int = 0
    delimiter: str | None = None
    encoding: str | None = None
    renamed_columns: dict[str, str] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    dialect: CsvDialect | None = None  # CSV: how the file was read (skipped lines, header)

    def summary(self) -> str:
        parts = [
            f"{self.format}{'+' + self.compression if self.compression else ''}",
            f"{self.rows_in} rows in",
            f"{self.rows_out} rows out",
            f"{len(self.schema)} columns",
            f"{self.row_groups} row groups",
            f"{self.output_bytes} bytes",
        ]
        if self.dialect is not None:
            parts.append(self.dialect.describe())
        if self.bad_row_count:
            parts.append(f"{self.bad_row_count} bad rows set aside")
        if self.schema_diff.kind != "none":
            parts.append(f"schema {self.schema_diff.kind}: {self.schema_diff.describe()}")
        return ", ".join(parts)


@dataclass(frozen=True)
class _Bad:
    line: int
    code: str
    reason: str
    raw: Any  # the line's text (str) or the record (dict)


# --------------------------------------------------------------------------- names


class ColumnNames:
    """Maps source column names to output names (normalised, de-duplicated), stably."""

    def __init__(self, normalize: bool) -> None:
        self._normalize = normalize
        self._map: dict[str, str] = {}
        self._used: set[str] = set()
        self._extra_renamed: dict[str, str] = {}  # repeated or empty header names

    def __call__(self, raw: str) -> str:
        out = self._map.get(raw)
        if out is None:
            out = self._claim(raw, len(self._map) + 1)
            self._map[raw] = out
        return out

    def header(self, fields: tuple[str, ...] | list[str]) -> list[str]:
        """Output names for a header's fields, one distinct name per position: a repeated
        name gets ``_2``, ``_3``... and an empty one ``col_<position>``, so that no
        column's values are lost to another of the same name."""
        out = []
        first: set[str] = set()
        for i, raw in enumerate(fields):
            if raw in first or not raw.strip():
                name = self._claim(raw, i + 1)
                self._extra_renamed[f"{raw} (column {i + 1})"] = name
                out.append(name)
            else:
                first.add(raw)
                out.append(self(raw))
        return out

    def _claim(self, raw: str, position: int) -> str:
        base = normalize_identifier(raw, prefix="c") if self._normalize else raw.strip()
        base = base or f"col_{position}"
        out, n = base, 1
        while out in self._used:
            n += 1
            out = f"{base}_{n}"
        self._used.add(out)
        return out

    def output_names(self) -> set[str]:
        return set(self._map.values()) | set(self._extra_renamed.values())

    @property
    def renamed(self) -> dict[str, str]:
        renamed = {k: v for k, v in self._map.items() if k != v}
        return renamed | self._extra_renamed


# --------------------------------------------------------------------------- detection


ZIP_MAGIC = b"PK\x03\x04"  # .xlsx and .ods workbooks are ZIP archives
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc) files


def _detect_format(head: bytes, options: DatasetOptions, name_format: str | None) -> str:
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(AVRO_MAGIC):
        return "avro"
    if head.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        # a workbook whatever its name says (the reader refuses other archives)
        hinted = options.format or name_format
        if hinted in SPREADSHEET_FORMATS:
            return hinted
        return "xlsx" if head.startswith(ZIP_MAGIC) else "xls"
    if options.format:
        return options.format
    if name_format:
        return name_format
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "json"
    if text[:1] == b"<" or head.startswith((b"\xff\xfe<\x00", b"\xfe\xff\x00<")):
        return "xml"
    return "csv"


def _refuse_binary(head: bytes, encoding: str, fmt: str, compressed: bool) -> None:
    """Reject, from the first decompressed bytes, a file that is not text at all (an
    image, random bytes), which would otherwise fail later with a misleading reason. A
    NUL byte never occurs in text of an 8-bit or UTF-8 encoding."""
    codec = codecs.lookup(encoding).name
    if codec.startswith(("utf-16", "utf-32")) or head.startswith(UTF16_BOMS):
        return  # NUL bytes are part of these encodings
    nul = head.find(b"\x00")
    if nul >= 0:
        raise RejectedFile(
            "malformed",
            f"the file is binary, not {fmt} text (NUL byte at offset {nul}"
            f"{' of the decompressed data' if compressed else ''})",
        )


# --------------------------------------------------------------------------- the run


class _Run:
    """One conversion's DuckDB session, bad rows and exceptions output."""

    def __init__(
        self,
        options: DatasetOptions,
        exceptions_sink: Callable[[], BinaryIO] | None,
        workdir: str,
        threads: int,
        memory_limit: str,
        databases: DuckDBPool | None = None,
    ) -> None:
        self.options = options
        self.workdir = workdir
        self.threads = threads
        self._own_pool: DuckDBPool | None = None
        if databases is None:  # a database of its own, spilling to workdir, closed with the run
            databases = self._own_pool = DuckDBPool(spill_root=workdir)
        self._connection = databases.connect(threads, memory_limit)
        self.con = self._connection.con
        self.con.execute("SET enable_progress_bar = false")
        self.bad: list[_Bad] = []
        self.bad_count = 0
        self._open_exceptions = exceptions_sink
        self.exceptions_written = 0

    def clear_rejects(self) -> None:
        """Empty DuckDB's reject tables (they exist once a read stored rejects)."""
        with contextlib.suppress(duckdb.CatalogException):
            self.con.execute("DELETE FROM reject_errors; DELETE FROM reject_scans")

    def close(self, failure: BaseException | None = None) -> None:
        """Done: the connection closed, its database back to the pool (unless ``failure``,
        what ended the run if anything, invalidated it)."""
        self._connection.release(failure)
        if self._own_pool is not None:
            self._own_pool.close()

    def copy(self, select: str, out: str, row_group_rows: int) -> int:
        """Write ``select`` to the Parquet file ``out``; the number of rows written."""
        row = self.con.execute(
            f"COPY ({select}) TO {literal(out)} "
            f"(FORMAT parquet, ROW_GROUP_SIZE {row_group_rows}, USE_TMP_FILE false)"
        ).fetchone()
        return int(row[0]) if row else 0

    def set_aside(self, bad: list[_Bad], rows_in: int) -> None:
        """Apply the bad-row policy to ``bad`` out of ``rows_in`` rows: set them aside to
        the exceptions output, or reject the file (policy ``reject``, more than the
        dataset's fraction of bad rows, or no good row at all)."""
        if not bad:
            return
        bad = sorted(bad, key=lambda b: b.line)
        first = bad[0]
        share = len(bad) / max(rows_in, 1)
        if (
            self.options.bad_rows == "reject"
            or share > self.options.max_bad_row_fraction
            or len(bad) >= rows_in
        ):
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            over = (
                f"; {len(bad)} of {rows_in} rows are bad, more than the "
                f"{self.options.max_bad_row_fraction:.0%} the dataset sets aside"
                if self.options.bad_rows != "reject" and len(bad) < rows_in
                else ""
            )
            raise RejectedFile(
                first.code,
                f"line {first.line}: {first.reason}{more}{over}",
                [b.line for b in bad[:REJECT_LINES]],
            )
        if self._open_exceptions is None:
            raise ValueError("bad_rows='exceptions' needs an exceptions sink")
        sink = self._open_exceptions()
        records = []
        for b in bad:
            entry: dict[str, Any] = {"line": b.line, "reason_code": b.code, "reason": b.reason}
            entry["raw" if isinstance(b.raw, str) else "record"] = b.raw
            records.append(json.dumps(entry, ensure_ascii=False, default=str))
        sink.write(("\n".join(records) + "\n").encode("utf-8"))
        self.exceptions_written += len(records)
        self.bad_count += len(bad)
        self.bad.extend(bad[: MAX_REPORTED_BAD_ROWS - len(self.bad)])


# --------------------------------------------------------------------------- spooling


def _spool(chunks: Iterator[bytes], path: str) -> None:
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def _head(path: str, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _line_breaks(data: bytes) -> int:
    """Line ends in ``data``: LF, CR or CRLF (a physical line is what an editor shows)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _lines_at(path: str, positions: list[int]) -> dict[int, int]:
    """Physical 1-based line number of each byte offset in ``path`` (one forward pass)."""
    out: dict[int, int] = {}
    line, done = 1, 0
    last = b""
    wanted = sorted(set(positions))
    with open(path, "rb") as f:
        for pos in wanted:
            while done < pos:
                chunk = f.read(min(READ_CHUNK, pos - done))
                if not chunk:
                    break
                line += _line_breaks(chunk) - (last == b"\r" and chunk[:1] == b"\n")
                last = chunk[-1:]
                done += len(chunk)
            out[pos] = line
    return out


def _complete_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(number of its first line, text) of successive runs of whole physical lines."""
    line = 1
    carry = b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(READ_CHUNK), b""):
            data = carry + chunk
            # cut after the last line end that is not the last byte (a CR may be half a CRLF)
            cut = max(data.rfind(b"\n", 0, len(data) - 1), data.rfind(b"\r", 0, len(data) - 1))
            if cut < 0:
                carry = data
                continue
            part, carry = data[: cut + 1], data[cut + 1 :]
            if part.endswith(b"\r") and carry.startswith(b"\n"):
                part, carry = part + b"\n", carry[1:]
            yield line, part
            line += _line_breaks(part)
    if carry:
        yield line, carry


# --------------------------------------------------------------------------- CSV


def _csv_reader(
    spool: str, dialect: CsvDialect, options: DatasetOptions, ncols: int, checked: bool = False
) -> str:
    """DuckDB's read of the CSV as ``ncols`` text columns ``c0``... A ``checked`` read also
    refuses, with :data:`SHIFTED`, the rows a plain one would load shifted or reject
    without a quote's help: see :func:`_checked_texts`."""
    params = [
        "auto_detect=false",
        f"delim={literal(dialect.delimiter)}",
        f"quote={literal(dialect.quote or '')}",
        f"escape={literal(dialect.escape or dialect.quote or '')}",
        # DuckDB drops comment lines itself and does not count them in ``skip``
        f"skip={dialect.skip_lines_without_comments + max(dialect.header_lines - 1, 0)}",
        f"header={'true' if dialect.header_lines else 'false'}",
        "columns={"
        + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(ncols + (1 if checked else 0)))
        + "}",
        "store_rejects=true",
        "strict_mode=true",
    ]
    if checked:
        # no unquoted field is a line end and no quoted one is a null: every field read
        # is a text, every field padded a NULL (the null values are mapped in SQL)
        params += ["nullstr=" + literal("\n"), "allow_quoted_nulls=false", "null_padding=true"]
    else:
        params.append("nullstr=[" + ", ".join(literal(v) for v in options.null_values) + "]")
    if dialect.comment:
        params.append(f"comment={literal(dialect.comment)}")
    if dialect.newline == "\r":
        # "\n" and "\r\n" are both read when new_line is unset; setting either (DuckDB
        # 1.4.4, strict mode) reads no rows at all
        params.append("new_line='\\r'")
    reader = f"read_csv({literal(spool)}, {', '.join(params)})"
    return _checked_texts(reader, options, ncols) if checked else reader


SHIFTED = "lakegov-shifted"


def _checked_texts(reader: str, options: DatasetOptions, ncols: int) -> str:
    """The ``ncols`` text columns of a ``reader`` of ``ncols + 1`` columns that pads short
    rows with NULLs and reads every field present as text: a row is kept when its last
    column is there and the one after it is not. Any other row (too few fields, or one
    field too many whose last is empty, which DuckDB's plain read drops silently) stops
    the read with :data:`SHIFTED` before its values are typed."""
    nulls = ", ".join(literal(v) for v in options.null_values)
    texts = ", ".join(
        f"CASE WHEN c{i} IN ({nulls}) THEN NULL ELSE c{i} END AS c{i}" if nulls else f"c{i}"
        for i in range(ncols)
    )
    whole = f"c{ncols - 1} IS NOT NULL AND c{ncols} IS NULL"
    return (
        f"(SELECT {texts} FROM {reader} "  # noqa: S608 - literals quoted
        f"WHERE CASE WHEN {whole} THEN true ELSE error('{SHIFTED}') END)"
    )


_REJECT_CODES = {
    "MISSING COLUMNS": "ragged_rows",
    "TOO MANY COLUMNS": "ragged_rows",
    "INVALID UNICODE": "encoding",
    "INVALID ENCODING": "encoding",
    "UNQUOTED VALUE": "malformed",
    "LINE SIZE OVER MAXIMUM": "malformed",
    "INVALID STATE": "malformed",
    "CAST": "schema_mismatch",
}


def _csv_rejects(run: _Run, spool: str, ncols: int) -> list[_Bad]:
    try:
        rows = run.con.execute(
            "SELECT line_byte_position, error_type::VARCHAR, csv_line, error_message "
            "FROM reject_errors ORDER BY line_byte_position"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    run.clear_rejects()
    if not rows:
        return []
    # a reject after empty lines starts at the first of them; its record after them
    starts = []
    for pos, kind, text, message in rows:
        record = text.lstrip("\r\n")
        starts.append((max(int(pos) - 1, 0) + len(text) - len(record), kind, record, message))
    lines = _lines_at(spool, [r[0] for r in starts])
    bad = []
    seen: set[int] = set()
    for pos, kind, text, message in starts:
        line = lines[pos]
        if line in seen:
            continue
        seen.add(line)
        code = _REJECT_CODES.get(kind, "malformed")
        if code == "ragged_rows":
            reason = f"expected {ncols} fields"
        elif code == "encoding":
            reason = "the line is not valid UTF-8 (declare the file's encoding)"
        else:
            reason = message
        bad.append(_Bad(line, code, reason, text))
    return bad


def _sample_types(run: _Run, reader: str, ncols: int) -> list[pa.DataType]:
    rows = run.con.execute(f"SELECT * FROM {reader} LIMIT {SAMPLE_ROWS}").fetchall()  # noqa: S608
    run.clear_rejects()
    columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) or [()] * ncols
    return [texts_type([v for v in values if v is not None]) for values in columns]


def _check_declared(header: list[str], declared: pa.Schema) -> None:
    """A file's columns against its declared schema: none undeclared, none required missing."""
    undeclared = [h for h in header if h not in declared.names]
    if undeclared:
        raise RejectedFile(
            "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
        )
    missing = [f.name for f in declared if f.name not in header and not f.nullable]
    if missing:
        raise RejectedFile(
            "schema_mismatch", f"declared column {missing[0]} is missing and not nullable"
        )


def _convert_csv(
    run: _Run,
    spool: str,
    out: str,
    names: ColumnNames,
    declared: pa.Schema | None,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> tuple[int, int, CsvDialect]:
    """(rows in, rows out, the dialect it was read with)."""
    options = run.options
    dialect = sniff_csv_dialect(_head(spool), options)
    header = names.header(dialect.columns)
    if not header:
        raise RejectedFile("empty", "the file has no header")
    ncols = len(header)
    if declared is not None:
        _check_declared(header, declared)

    def read(spool: str, checked: bool = False) -> tuple[int, list[_Bad], list[_Bad]]:
        """(rows written, rows not fitting the declared schema, the reader's rejects)."""
        reader = _csv_reader(spool, dialect, options, ncols, checked)
        try:
            if declared is not None:
                text = {name: f"c{i}" for i, name in enumerate(header)}

                def lines_of(ordinals: list[int]) -> dict[int, int]:
                    rejected = {b.line for b in _csv_rejects(run, spool, ncols)}
                    return _csv_record_lines(spool, dialect, ordinals, rejected)

                rows_out, failing = _declared_copy(
                    run, reader, declared, text, out, row_group_rows, lines_of, lambda r: r
                )
            else:
                rows_out = _csv_inferred(run, reader, out, header, floors, row_group_rows)
                failing = []
        except duckdb.Error as exc:
            # DuckDB's parallel reader pads no row of a file with quoted line ends
            if checked and (SHIFTED in str(exc) or "null_padding" in str(exc)):
                raise _ShiftedRows from exc
            if not isinstance(exc, duckdb.InvalidInputException):
                raise
            raise RejectedFile(
                "malformed", f"the CSV cannot be parsed: {_first_line(exc)}"
            ) from exc
        return rows_out, failing, _csv_rejects(run, spool, ncols)

    # Rows DuckDB would load shifted: with no quote where an unquoted field has one (a
    # search over the file's bytes tells), the checked read finds the others itself.
    # Otherwise, or when it found one, the lines are looked for first and the file read
    # from a copy with them emptied (every line keeps its number). A file of one column
    # is never read checked: DuckDB reads its empty lines as null values, and a second,
    # padded column would make them blank lines, skipped.
    malformed: list[_Bad] = []
    try:
        if ncols == 1 or _may_hold_misplaced_quotes(spool, dialect, run.threads):
            raise _ShiftedRows
        rows_out, failing, rejects = read(spool, checked=True)
        if any(_swallows_lines(b) for b in rejects):
            raise _ShiftedRows  # a quote that never closes hid lines from the check
    except _ShiftedRows:
        run.clear_rejects()
        malformed = _suspect_lines(run, spool, dialect)
        if malformed:
            spool = _without_lines(spool, {b.line for b in malformed}, run.workdir)
        rows_out, failing, rejects = read(spool)
    # A quote that never closes makes DuckDB read the rest of the file (or up to the next
    # quote) as one rejected value: the rows after it would be lost in that reject. Its
    # line is emptied too and the file read again.
    for _ in range(MAX_STRAY_QUOTES):
        swallowing = [b for b in rejects if _swallows_lines(b)]
        if not swallowing:
            break
        spool = _without_lines(spool, {b.line for b in swallowing}, run.workdir)
        malformed += [
            _Bad(
                b.line,
                "malformed",
                "a quote opened on this line never closes",
                str(b.raw).splitlines()[0],
            )
            for b in swallowing
        ]
        rows_out, failing, rejects = read(spool)
    else:
        raise RejectedFile(
            "malformed",
            f"quotes that never close on more than {MAX_STRAY_QUOTES} lines",
            [b.line for b in malformed[:REJECT_LINES]],
        )
    bad = sorted(malformed + rejects + failing, key=lambda b: b.line)
    run.set_aside(bad, rows_out + len(bad))
    return rows_out + len(bad), rows_out, dialect


def _swallows_lines(bad: _Bad) -> bool:
    """A reject for an unterminated quote whose text runs over the following lines."""
    text = str(bad.raw).rstrip("\r\n")
    return "unterminated quote" in bad.reason and ("\n" in text or "\r" in text)


def _without_lines(path: str, lines: set[int], workdir: str) -> str:
    """A copy of ``path`` in ``workdir`` with the physical ``lines`` emptied, their line
    ends kept (every other line keeps its number; DuckDB skips empty lines). The copy is
    new each time: ``path`` may be the caller's own file, read in place."""
    fd, emptied = tempfile.mkstemp(prefix="input-", suffix=".csv", dir=workdir)
    with os.fdopen(fd, "wb") as dst:
        for first, part in _complete_lines(path):
            pieces = _LINE_BREAK.split(part)
            ends = _LINE_BREAK.findall(part)
            for i, text in enumerate(pieces):
                dst.write(b"" if first + i in lines else text)
                if i < len(ends):
                    dst.write(ends[i])
    return emptied


def _re2_class(chars: set[str]) -> str:
    """A negated RE2 character class of ``chars``."""
    escaped = {"\t": "\\t", "\r": "\\r", "\n": "\\n"}
    return (
        "[^" + "".join(escaped.get(c, c if c.isalnum() else "\\" + c) for c in sorted(chars)) + "]"
    )


def _re2_text(text: str) -> str:
    return "".join("\\t" if c == "\t" else c if c.isalnum() else "\\" + c for c in text)


def _suspect_patterns(dialect: CsvDialect, breaks: str = "") -> tuple[str | None, str]:
    """RE2 patterns over one physical line: (a quote where no field can have one, exactly
    one field too many with the last one empty). ``breaks``: characters no match may
    contain besides the dialect's (the line ends, when the text is more than one line)."""
    d = _re2_text(dialect.delimiter)
    d0 = dialect.delimiter[0]
    width = len(dialect.columns)
    cut = set(breaks)
    if dialect.quote is None:
        return None, f"^(?:{_re2_class({d0} | cut)}*{d}){{{width}}}$"
    q = _re2_text(dialect.quote)
    if dialect.escape:
        e = _re2_text(dialect.escape)
        quoted = f"{q}(?:{_re2_class({dialect.quote, dialect.escape} | cut)}|{e}.)*{q}"
    else:
        quoted = f"(?:{q}{_re2_class({dialect.quote} | cut)}*{q})+"
    field = f"(?:{quoted}|{_re2_class({dialect.quote, d0} | cut)}*)"
    trailing = f"^(?:{field}{d}){{{width}}}$"
    around = {dialect.quote, dialect.delimiter[0], dialect.delimiter[-1]} | cut
    before = around | ({dialect.escape} if dialect.escape else set())
    quotes = f"{_re2_class(before)}{q}{_re2_class(around)}"
    return quotes, trailing


GATE_CHUNK = 8 * 1024 * 1024  # bytes of whole lines handed to one thread at a time
GATE_PIECE = 64 * 1024  # bytes per value the patterns run over (cut after a line end)


def _text_pieces(data: bytes | bytearray) -> pa.Array:
    """``data`` (whole lines) as a binary array of ~GATE_PIECE-byte values, each cut right
    after a line end, without copying it."""
    offsets = array.array("i", [0])
    size = len(data)
    while offsets[-1] < size:
        start = offsets[-1] + GATE_PIECE
        if start >= size:
            offsets.append(size)
            break
        ends = [data.find(b, start, start + GATE_PIECE) for b in (b"\n", b"\r")]
        if max(ends) < 0:  # a line longer than the window
            ends = [data.find(b, start) for b in (b"\n", b"\r")]
        found = [e for e in ends if e >= 0]
        offsets.append(min(found) + 1 if found else size)
    return pa.Array.from_buffers(
        pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


class _ShiftedRows(Exception):
    """A CSV may hold rows DuckDB would load shifted: look for their lines first."""


def _may_hold_misplaced_quotes(path: str, dialect: CsvDialect, threads: int) -> bool:
    """Whether any physical line of ``path`` may have a quote where no field can (the
    first of :func:`_suspect_patterns`; ``False`` only when none has). The pattern runs
    over runs of whole lines as bytes (RE2's Latin-1 mode, on every vCPU); it matches no
    line end, so each line's match is one here. The header, a preamble or a comment may
    match too: :func:`_suspect_lines` then sorts them out. ``True`` when the dialect is
    not plain ASCII or ends lines with CR alone (where a LF is text)."""
    if dialect.quote is None:
        return False
    chars = dialect.delimiter + dialect.quote + (dialect.escape or "")
    if dialect.newline == "\r" or not chars.isascii():
        return True
    import pyarrow.compute as pc  # only CSV reads need it (~0.04 s to import)

    pattern, _ = _suspect_patterns(dialect, "\r\n")
    quote = dialect.quote.encode()

    def matches(data: bytearray) -> bool:
        if data.find(quote) < 0:
            return False
        found = pc.match_substring_regex(_text_pieces(data), pattern=pattern)
        return bool(pc.any(found).as_py())

    file_size = os.path.getsize(path)
    # a buffer no larger than the file: a zeroed GATE_CHUNK per small file costs more CPU
    # than the search itself
    chunk = min(GATE_CHUNK, max(file_size, 1))

    def runs() -> Iterator[bytearray]:
        """Successive runs of whole lines, each read into its own buffer (no copy)."""
        with open(path, "rb", buffering=0) as f:
            carry = b""
            while True:
                data = bytearray(chunk + len(carry))
                data[: len(carry)] = carry
                size = len(carry) + (f.readinto(memoryview(data)[len(carry) :]) or 0)
                if size == len(carry):
                    if carry:
                        yield bytearray(carry)
                    return
                cut = max(data.rfind(b"\n", 0, size), data.rfind(b"\r", 0, size)) + 1
                carry = bytes(data[cut:size])
                if cut:
                    del data[cut:]
                    yield data

    if file_size <= GATE_CHUNK:  # a run or two: not worth a thread
        return any(matches(data) for data in runs())
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        pending: deque[Future[bool]] = deque()
        for data in runs():
            pending.append(pool.submit(matches, data))
            if len(pending) > threads and pending.popleft().result():
                return True
        return any(f.result() for f in pending)


def _suspect_lines(run: _Run, path: str, dialect: CsvDialect) -> list[_Bad]:
    """Rows DuckDB would load with shifted values, found before it reads the file:

    - a quote inside an unquoted field (``07:31 "Lamp; LED"``: a delimiter is missing
      before it) or text right after a closing quote (``"Smith, Jr." Lisbon``): DuckDB reads
      the first kind as text and splits at the delimiter inside the quotes;
    - a row with one field too many whose last field is empty (``a,b,extra,c,``): DuckDB
      takes the trailing delimiter for a line end and loads the row shifted.

    DuckDB itself reads the file line by line (one text column; empty lines are rows, so
    the row number is the physical line) and matches the lines with RE2, on every vCPU.
    A file it cannot read that way is left to the conversion's own read to report.
    """
    quotes, trailing = _suspect_patterns(dialect)
    # the trailing pattern ends with the delimiter: the cheap suffix test goes first
    matches = [
        f"(suffix(line, {literal(dialect.delimiter)}) "
        f"AND regexp_matches(line, {literal(trailing)}))"
    ]
    if quotes is not None:
        # most lines of most files hold no quote at all: a byte search decides for them
        matches.insert(
            0,
            f"(contains(line, {literal(dialect.quote or '')}) "
            f"AND regexp_matches(line, {literal(quotes)}))",
        )
    lines = lines_of_file(path, new_line="\\r" if dialect.newline == "\r" else None)
    any_match = f"SELECT count(*) FROM {lines} WHERE {' OR '.join(matches)}"  # noqa: S608
    query = (
        f"SELECT n, line, {matches[0]} FROM "  # noqa: S608 - literals quoted
        f"(SELECT row_number() OVER () AS n, line FROM {lines}) "
        f"WHERE n > {dialect.skip_lines + dialect.header_lines} AND line IS NOT NULL "
        f"AND ({' OR '.join(matches)}) ORDER BY n LIMIT 100001"
    )
    try:
        # Numbering the lines costs three times the scan (the window keeps every line):
        # a parallel scan first tells whether any line is suspect at all (the header
        # and preamble may match too; then the numbered query sorts them out).
        first = run.con.execute(any_match).fetchone()
        if not first or not first[0]:
            return []
        rows = run.con.execute(query).fetchall()
    except duckdb.Error:
        return []
    width = len(dialect.columns)
    found = []
    for n, line, misplaced_quote in rows:
        if dialect.comment and line.startswith(dialect.comment):
            continue
        if misplaced_quote and quotes is not None:
            reason = "a quote inside an unquoted field: a delimiter or a quote is missing"
            found.append(_Bad(int(n), "malformed", reason, line))
        else:
            found.append(_Bad(int(n), "ragged_rows", f"expected {width} fields", line))
    return found


def _csv_inferred(
    run: _Run,
    reader: str,
    out: str,
    header: list[str],
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> int:
    """Write the file with inferred types (widened and written again if a later value needs
    it); the number of rows written."""
    ncols = len(header)
    types = _sample_types(run, reader, ncols)
    for i, name in enumerate(header):
        if name in floors:
            types[i] = join_types(floors[name], types[i])
    wide = [False] * ncols
    for _ in range(MAX_RETYPES):
        select = ", ".join(
            f"{typed_text(t, f'c{i}', i)} AS {identifier(name)}"
            for i, (t, name) in enumerate(zip(types, header, strict=True))
        )
        absent = [
            f"NULL::{duckdb_type(t)} AS {identifier(n)}"
            for n, t in floors.items()
            if n not in header
        ]
        query = f"SELECT {', '.join([select, *absent])} FROM {reader}"  # noqa: S608
        try:
            return run.copy(query, out, row_group_rows)
        except duckdb.Error as exc:
            request = widen_request(exc)
            if request is None:
                raise
            position, value = request
            types[position], wide[position] = widen_for_text(
                types[position], wide[position], value, retype=True
            )
            run.clear_rejects()
    raise RejectedFile("malformed", "the column types do not settle")  # pragma: no cover


@dataclass(frozen=True)
class _Check:
    """One declared column: its text in the source (``None``: absent) and whether a row's
    value fits (a SQL condition)."""

    field: pa.Field
    text: str | None
    ok: str


def _declared_plan(declared: pa.Schema, text: dict[str, str]) -> tuple[list[str], list[_Check]]:
    """The ``SELECT`` list casting each declared column from its ``text`` column, and the
    checks a row must pass (a value that does not fit, a null in a non-nullable column)."""
    select, checks = [], []
    for f in declared:
        col = text.get(f.name)
        t = duckdb_type(f.type)
        if col is None:
            select.append(f"NULL::{t} AS {identifier(f.name)}")
            if not f.nullable:
                checks.append(_Check(f, None, "false"))
            continue
        fit = fits(f.type, col)
        ok = f"({col} IS NOT NULL AND {fit})" if not f.nullable else f"({col} IS NULL OR {fit})"
        checks.append(_Check(f, col, ok))
        select.append(f"TRY_CAST({col} AS {t}) AS {identifier(f.name)}")
    return select, checks


def _declared_copy(
    run: _Run,
    reader: str,
    declared: pa.Schema,
    text: dict[str, str],
    out: str,
    row_group_rows: int,
    lines_of: Callable[[list[int]], dict[int, int]],
    raw_record: Callable[[dict[str, Any]], Any],
) -> tuple[int, list[_Bad]]:
    """Write the rows that fit the declared schema; (rows written, the rows that do not,
    with their lines). One pass when every row fits; otherwise the failing rows are listed
    (their record numbers mapped to lines by ``lines_of``) and the good ones written."""
    select, checks = _declared_plan(declared, text)
    good = " AND ".join(c.ok for c in checks) or "true"
    query = f"SELECT {', '.join(select)} FROM {reader}"  # noqa: S608 - names quoted
    try:
        guard = f"CASE WHEN {good} THEN true ELSE error('{WIDEN} bad row') END"
        return run.copy(f"{query} WHERE {guard}", out, row_group_rows), []
    except duckdb.Error as exc:
        if WIDEN not in str(exc):
            raise
    run.clear_rejects()
    values = ", ".join(c.text for c in checks if c.text is not None)
    flags = ", ".join(f"NOT coalesce({c.ok}, false)" for c in checks)
    failing = run.con.execute(
        f"SELECT _n, {flags}{', ' + values if values else ''} FROM "  # noqa: S608
        f"(SELECT row_number() OVER () AS _n, * FROM {reader}) WHERE NOT ({good}) ORDER BY _n"
    ).fetchall()
    lines = lines_of([int(row[0]) for row in failing])
    present = [c for c in checks if c.text is not None]
    bad = []
    for row in failing:
        flagged = row[1 : 1 + len(checks)]
        record = dict(zip((c.field.name for c in present), row[1 + len(checks) :], strict=True))
        check = next(c for c, wrong in zip(checks, flagged, strict=True) if wrong)
        value = record.get(check.field.name)
        reason = (
            f"column {check.field.name} is null but declared not nullable"
            if value is None
            else f"column {check.field.name}: {value!r} is not a valid {check.field.type}"
        )
        bad.append(_Bad(lines[int(row[0])], "schema_mismatch", reason, raw_record(record)))
    run.clear_rejects()
    return run.copy(f"{query} WHERE {good}", out, row_group_rows), bad


def _csv_record_lines(
    spool: str, dialect: CsvDialect, ordinals: list[int], rejected: set[int]
) -> dict[int, int]:
    """Physical line of the data records numbered ``ordinals`` (1-based, as DuckDB reads
    them: blank lines and the rows it rejected, starting on the lines ``rejected``, are not
    records). One pass with Python's csv module: only files with bad rows pay for it."""
    wanted = set(ordinals)
    out: dict[int, int] = {}
    skip = dialect.skip_lines + dialect.header_lines
    with open(spool, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(
            f,
            delimiter=dialect.delimiter[0],
            quotechar=dialect.quote or '"',
            quoting=csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
            escapechar=dialect.escape,
            skipinitialspace=dialect.delimiter[1:].isspace(),  # ", ": a quote after the space
            strict=False,
        )
        n = 0
        start = 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if line <= skip or not record or line in rejected:
                continue
            if dialect.comment and record[0].startswith(dialect.comment):
                continue
            n += 1
            if n in wanted:
                out[n] = line
                if len(out) == len(wanted):
                    break
    return out


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --------------------------------------------------------------------------- JSON


_UNSAFE_JSON = re.compile(r"JSON|MAP|UBIGINT|HUGEINT|STRUCT\(\)")
_NESTED_FLOAT = re.compile(r"(DOUBLE|FLOAT)(\[\]|[,)])")


def _json_fast_types(run: _Run, spool: str, sample_rows: int) -> pa.Schema | None:
    """DuckDB's structure of the file from ``sample_rows`` records (-1: all) when it is
    safe to read with: no integer beyond int64, no mixed-type (JSON) value, no map, no
    float inside a struct or list (top-level floats are read as text and checked).
    ``None``: lakegov types the file itself."""
    source = (
        f"SELECT * FROM read_json({literal(spool)}, format='auto', records='true', "  # noqa: S608
        f"map_inference_threshold=-1, sample_size={sample_rows})"
    )
    try:
        # one read of the sample gives both DuckDB's types and the Arrow schema
        result = run.con.execute(f"{source} LIMIT 0")
        described = [(str(d[0]), str(d[1])) for d in result.description or []]
        schema = result.fetch_arrow_table().schema
    except duckdb.Error:
        return None
    for _, t in described:
        if _UNSAFE_JSON.search(t) or (t not in ("DOUBLE", "FLOAT") and _NESTED_FLOAT.search(t)):
            return None
    if not described or _renamed_keys([name for name, _ in described]):
        return None
    return schema


def _renamed_keys(names: list[str]) -> bool:
    """Whether DuckDB may have renamed keys that differ only in case (``Id``, ``id``
    become ``Id``, ``id_1``): read with those names, the renamed keys' values would be
    lost. (A file whose keys really are ``id`` and ``id_1`` also answers yes: it is only
    read the slower way.)"""
    bases = [re.sub(r"_\d+$", "", n).lower() for n in names]
    return len(set(bases)) < len(bases)


def _json_fast(
    run: _Run,
    spool: str,
    out: str,
    names: ColumnNames,
    schema: pa.Schema,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> int:
    """Read with ``schema`` (each column at least its type in ``floors``); a top-level
    float column is read as text and checked like a CSV one."""
    columns, select = [], []
    for i, f in enumerate(schema):
        name = names(f.name)
        t = join_types(floors[name], f.type) if name in floors else f.type
        floating = pa.types.is_floating(t)
        columns.append(f"{literal(f.name)}: {literal('VARCHAR' if floating else duckdb_type(t))}")
        col = identifier(f.name)
        select.append(f"{typed_text(t, col, i) if floating else col} AS {identifier(name)}")
    seen = set(names.output_names())
    select += [
        f"NULL::{duckdb_type(t)} AS {identifier(n)}" for n, t in floors.items() if n not in seen
    ]
    reader = f"read_json({literal(spool)}, format='auto', records='true', columns={{{', '.join(columns)}}})"
    return run.copy(f"SELECT {', '.join(select)} FROM {reader}", out, row_group_rows)  # noqa: S608


@dataclass
class _JsonScan:
    """The records of a JSON file, one per line in ``clean``, typed on the lattice."""

    clean: str
    lines: list[int]  # physical line (or record number) of each clean record
    schema: dict[str, pa.DataType]
    wide: set[ColumnPath]
    floats: set[ColumnPath]
    bad: list[_Bad]


def _json_type(value: Any, path: ColumnPath, scan: _JsonScan) -> pa.DataType:
    if isinstance(value, dict):
        return pa.struct([pa.field(k, _json_type(v, (*path, k), scan)) for k, v in value.items()])
    if isinstance(value, list):
        item: pa.DataType = pa.null()
        for v in value:
            item = join_types(item, _json_type(v, (*path, LIST_ITEM), scan))
        return pa.list_(item)
    t, wide = json_value_type(value)
    if wide:
        scan.wide.add(path)
    if pa.types.is_floating(t):
        scan.floats.add(path)
    return t


def _exact(t: pa.DataType, path: ColumnPath, text: set[ColumnPath]) -> pa.DataType:
    if pa.types.is_struct(t):
        return pa.struct(
            [
                pa.field(t.field(i).name, _exact(t.field(i).type, (*path, t.field(i).name), text))
                for i in range(t.num_fields)
            ]
        )
    if pa.types.is_list(t):
        return pa.list_(_exact(t.value_type, (*path, LIST_ITEM), text))
    return (
        pa.string() if path in text and (pa.types.is_floating(t) or pa.types.is_decimal(t)) else t
    )


def _plain(value: Any) -> Any:
    if isinstance(value, FloatText):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _json_records(spool: str) -> Iterator[tuple[int, bytes | None, Any, str | None]]:
    """(line, the record's JSON text, the parsed value, error) for each record: lines for
    JSON Lines, record numbers for a JSON array or objects one after another."""
    with open(spool, "rb") as f:
        head = f.read(HEAD_BYTES)
    text = head.lstrip(b" \t\r\n")
    documents = text.startswith(b"[")
    if not documents:
        first = text.split(b"\n", 1)[0]
        try:
            json.loads(first)
        except ValueError:
            documents = b"\n" in text or len(text) < len(head)
    if not documents:
        with open(spool, "rb") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield n, line, json.loads(line, parse_float=FloatText), None
                except UnicodeDecodeError:
                    yield n, line, None, "encoding"
                except ValueError as exc:
                    yield n, line, None, f"not valid JSON: {exc}"
        return
    yield from _json_documents(spool)


def _json_documents(spool: str) -> Iterator[tuple[int, bytes | None, Any, str | None]]:
    """The records of a JSON array, or of JSON values one after another, read forwards in
    chunks (memory: one chunk and one record)."""
    decoder = json.JSONDecoder(parse_float=FloatText)
    utf8 = codecs.getincrementaldecoder("utf-8")("strict")
    space = re.compile(r"\s*")
    with open(spool, "rb") as source:
        buf, pos, eof = "", 0, False

        def more() -> bool:
            """Append the next chunk (dropping what was consumed); False at the end."""
            nonlocal buf, pos, eof
            if eof:
                return False
            chunk = source.read(READ_CHUNK)
            eof = not chunk
            try:
                text = utf8.decode(chunk, final=eof)
            except UnicodeDecodeError as exc:
                raise RejectedFile("encoding", "the JSON document is not valid UTF-8") from exc
            buf, pos = buf[pos:] + text, 0
            return True

        def skip_space() -> None:
            nonlocal pos
            while True:
                pos = space.match(buf, pos).end()  # type: ignore[union-attr]
                if pos < len(buf) or not more():
                    return

        skip_space()
        in_array = buf.startswith("[", pos)
        if in_array:
            pos += 1
            skip_space()
        record = 0
        while pos < len(buf):
            if in_array and buf[pos] == "]":
                pos += 1
                skip_space()
                if pos < len(buf):
                    raise RejectedFile(
                        "malformed", f"unexpected data after the JSON array (record {record})"
                    )
                return
            if in_array and record > 0:
                if buf[pos] != ",":
                    raise RejectedFile(
                        "malformed", f"expected ',' or ']' after record {record}", [record]
                    )
                pos += 1
                skip_space()
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    if end < len(buf) or eof:  # a number at the end may go on
                        break
                except json.JSONDecodeError as exc:
                    if eof:
                        raise RejectedFile(
                            "malformed",
                            f"record {record + 1} is not valid JSON: {exc.msg}",
                            [record + 1],
                        ) from exc
                more()
            pos = end
            record += 1
            yield record, None, value, None
            skip_space()
        if in_array:
            raise RejectedFile("malformed", f"the JSON array is not closed after record {record}")


def _scan_json(spool: str, workdir: str) -> _JsonScan:
    fd, clean = tempfile.mkstemp(prefix="lakegov-", suffix=".jsonl", dir=workdir)
    scan = _JsonScan(clean, [], {}, set(), set(), [])
    with os.fdopen(fd, "wb") as out:
        for line, raw, value, error in _json_records(spool):
            raw_text = raw.decode("utf-8", "replace").rstrip("\r\n") if raw is not None else ""
            if error == "encoding":
                scan.bad.append(_Bad(line, "encoding", "the line is not valid UTF-8", raw_text))
                continue
            if error is not None:
                scan.bad.append(_Bad(line, "malformed", error, raw_text))
                continue
            if not isinstance(value, dict):
                scan.bad.append(
                    _Bad(
                        line,
                        "malformed",
                        "not a JSON object",
                        raw_text or json.dumps(_plain(value)),
                    )
                )
                continue
            for k, v in value.items():
                t = _json_type(v, (k,), scan)
                scan.schema[k] = join_types(scan.schema[k], t) if k in scan.schema else t
            out.write(
                raw
                if raw is not None and raw.endswith(b"\n")
                else (
                    raw.rstrip(b"\r\n")
                    if raw is not None
                    else json.dumps(_plain(value), ensure_ascii=False).encode()
                )
                + b"\n"
            )
            scan.lines.append(line)
    text = scan.wide & scan.floats
    scan.schema = {k: _exact(t, (k,), text) for k, t in scan.schema.items()}
    return scan


def _convert_json(
    run: _Run,
    spool: str,
    out: str,
    declared: pa.Schema | None,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> tuple[int, int, ColumnNames]:
    """(rows in, rows out, the column names). DuckDB's reader with its sampled structure
    first, then with the structure of every record; lakegov types the records itself
    when neither is safe, when a value does not fit, or with a declared schema."""
    normalize = run.options.normalize_column_names
    if declared is None:
        for sample_rows in (SAMPLE_ROWS, -1):
            schema = _json_fast_types(run, spool, sample_rows)
            if schema is None:
                continue
            names = ColumnNames(normalize)
            try:
                rows = _json_fast(run, spool, out, names, schema, floors, row_group_rows)
            except duckdb.Error:
                continue
            return rows, rows, names
    names = ColumnNames(normalize)
    scan = _scan_json(spool, run.workdir)
    try:
        rows_in, rows_out = _json_typed(run, scan, out, names, declared, floors, row_group_rows)
    finally:
        Path(scan.clean).unlink(missing_ok=True)
    return rows_in, rows_out, names


def _refuse_keys_differing_in_case(keys: Iterable[str]) -> None:
    """DuckDB's JSON reader does not tell keys apart by case: reading ``Id`` and ``id`` as
    two columns fails and reading them as one would lose values, so the file is refused."""
    seen: dict[str, str] = {}
    for key in keys:
        other = seen.setdefault(key.lower(), key)
        if other != key:
            raise RejectedFile(
                "malformed",
                f"the keys {other!r} and {key!r} differ only in case: they cannot be told "
                "apart (rename one of them in the export)",
            )


def _json_typed(
    run: _Run,
    scan: _JsonScan,
    out: str,
    names: ColumnNames,
    declared: pa.Schema | None,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> tuple[int, int]:
    rows_in = len(scan.lines) + len(scan.bad)
    if not scan.lines:
        if scan.bad:
            run.set_aside(scan.bad, rows_in)
        raise RejectedFile("empty", "the file has no data rows")
    _refuse_keys_differing_in_case(scan.schema)
    output = {raw: names(raw) for raw in scan.schema}
    if declared is not None:
        undeclared = [n for n in output.values() if n not in declared.names]
        if undeclared:
            raise RejectedFile(
                "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
            )
        columns = ", ".join(f"{literal(raw)}: 'VARCHAR'" for raw in output)
        reader = (
            f"read_json({literal(scan.clean)}, format='newline_delimited', columns={{{columns}}})"
        )
        text = {name: identifier(raw) for raw, name in output.items()}
        try:
            rows_out, bad = _declared_copy(
                run,
                reader,
                declared,
                text,
                out,
                row_group_rows,
                lambda ordinals: {n: scan.lines[n - 1] for n in ordinals},
                lambda record: record,
            )
        except duckdb.Error as exc:
            raise RejectedFile("malformed", f"the JSON cannot be read: {_first_line(exc)}") from exc
        bad += scan.bad
        run.set_aside(bad, rows_in)
        return rows_in, rows_out
    types = dict(scan.schema)
    for raw, name in output.items():
        if name in floors:
            types[raw] = join_types(floors[name], types[raw])
    columns = ", ".join(f"{literal(raw)}: {literal(duckdb_type(t))}" for raw, t in types.items())
    reader = f"read_json({literal(scan.clean)}, format='newline_delimited', columns={{{columns}}})"
    select = [
        f"{'NULL::VARCHAR' if t == pa.struct([]) else identifier(raw)} AS {identifier(output[raw])}"
        for raw, t in types.items()
    ]
    select += [
        f"NULL::{duckdb_type(t)} AS {identifier(n)}"
        for n, t in floors.items()
        if n not in output.values()
    ]
    query = f"SELECT {', '.join(select)} FROM {reader}"  # noqa: S608
    run.set_aside(scan.bad, rows_in)
    try:
        rows_out = run.copy(query, out, row_group_rows)
    except duckdb.Error as exc:
        raise RejectedFile("malformed", f"the JSON cannot be read: {_first_line(exc)}") from exc
    return rows_in, rows_out


# --------------------------------------------------------------------------- Parquet, Avro


def _convert_binary(
    run: _Run,
    fmt: str,
    spool: str,
    out: str,
    names: ColumnNames,
    declared: pa.Schema | None,
    row_group_rows: int,
) -> tuple[int, int]:
    if fmt == "avro":
        tables = avro_batches(spool, 65_536)
        first = next(tables, None)
        if first is None:
            raise RejectedFile("empty", "the file has no data rows")

        def batches() -> Iterator[pa.RecordBatch]:
            assert first is not None
            yield from first.to_batches()
            for table in tables:
                yield from table.cast(first.schema).to_batches()

        run.con.register("avro_input", pa.RecordBatchReader.from_batches(first.schema, batches()))
        reader = "avro_input"
    else:
        reader = f"read_parquet({literal(spool)})"
    try:
        schema = run.con.execute(f"SELECT * FROM {reader} LIMIT 0").fetch_arrow_table().schema  # noqa: S608
    except duckdb.Error as exc:
        raise RejectedFile("malformed", f"not a readable {fmt} file: {_first_line(exc)}") from exc
    output = [names(f.name) for f in schema]
    if declared is not None:
        undeclared = [n for n in output if n not in declared.names]
        if undeclared:
            raise RejectedFile(
                "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
            )
    select = []
    for f, name in zip(schema, output, strict=True):
        col = identifier(f.name)
        if declared is not None:
            select.append(
                f"CAST({col} AS {duckdb_type(declared.field(name).type)}) AS {identifier(name)}"
            )
        elif fmt == "avro" and pa.types.is_timestamp(f.type) and f.type.tz is None:
            # Avro timestamps are instants (UTC) by the specification
            select.append(f"CAST({col} AS TIMESTAMPTZ) AS {identifier(name)}")
        else:
            select.append(f"{col} AS {identifier(name)}")
    if declared is not None:
        select += [
            f"NULL::{duckdb_type(f.type)} AS {identifier(f.name)}"
            for f in declared
            if f.name not in output
        ]
    try:
        rows = run.copy(f"SELECT {', '.join(select)} FROM {reader}", out, row_group_rows)  # noqa: S608
    except duckdb.ConversionException as exc:
        raise RejectedFile("schema_mismatch", _first_line(exc)) from exc
    except duckdb.Error as exc:
        raise RejectedFile(
            "malformed", f"the {fmt} file cannot be read: {_first_line(exc)}"
        ) from exc
    return rows, rows


# --------------------------------------------------------------------------- text tables


def _convert_text_columns(
    run: _Run,
    table: TextColumns,
    out: str,
    names: ColumnNames,
    declared: pa.Schema | None,
    floors: dict[str, pa.DataType],
    row_group_rows: int,
) -> tuple[int, int, str]:
    """XML records, a sheet, fixed-width lines (:mod:`lakegov.convert.tables`), typed and
    written as CSV text is; (rows in, rows out, the format read)."""
    header = names.header(table.header)
    if not header:
        raise RejectedFile("empty", "the file has no columns")
    nested = {header[table.header.index(raw)]: t for raw, t in table.nested.items()}
    if declared is not None:
        _check_declared(header, declared)
        text = {name: f"c{i}" for i, name in enumerate(header)}
        rows_out, bad = _declared_copy(
            run, table.reader, declared, text, out, row_group_rows, table.lines_of, lambda r: r
        )
    else:
        flat = {n: t for n, t in floors.items() if n not in nested}
        rows_out = _csv_inferred(run, table.reader, out, header, flat, row_group_rows)
        bad = []
        for n, t in nested.items():
            if n in floors:
                with contextlib.suppress(ValueError, TypeError, pa.ArrowInvalid):
                    nested[n] = join_types(floors[n], t)
        if nested:
            # the repeated elements' JSON text, with the types the reader gave them
            typed = out + ".nested.parquet"
            replaced = ", ".join(
                f"from_json({identifier(n)}, {literal(json.dumps(_json_structure(t)))}) "
                f"AS {identifier(n)}"
                for n, t in nested.items()
            )
            run.copy(
                f"SELECT * REPLACE ({replaced}) FROM read_parquet({literal(out)})",  # noqa: S608
                typed,
                row_group_rows,
            )
            os.replace(typed, out)
    bad += [_Bad(u.line, u.code, u.reason, u.raw) for u in table.unread]
    bad.sort(key=lambda b: b.line)
    run.set_aside(bad, rows_out + len(bad))
    return rows_out + len(bad), rows_out, table.format


def _json_structure(t: pa.DataType) -> Any:
    """DuckDB's ``from_json`` structure for an Arrow type."""
    if pa.types.is_list(t):
        return [_json_structure(t.value_type)]
    if pa.types.is_struct(t):
        return {t.field(i).name: _json_structure(t.field(i).type) for i in range(t.num_fields)}
    return duckdb_type(t)


# --------------------------------------------------------------------------- driver


def convert(
    source: BinaryIO,
    sink: BinaryIO,
    *,
    options: DatasetOptions | None = None,
    source_name: str = "",
    previous_schema: pa.Schema | None = None,
    exceptions_sink: Callable[[], BinaryIO] | None = None,
    workdir: str | None = None,
    threads: int | None = None,
    row_group_rows: int = ROW_GROUP_ROWS,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    databases: DuckDBPool | None = None,
) -> ConversionResult:
    """Convert one file read forwards from ``source`` into one Parquet file on ``sink``.

    ``source_name`` (the key or path) gives format and compression hints from its
    extensions; content wins where it is unambiguous (magic bytes). ``previous_schema`` is
    the dataset's current schema (from the catalog), if any: its types are the floor of this
    file's, and its columns absent from the file are written as nulls. ``exceptions_sink``
    is called once, when bad rows are set aside, and receives JSON Lines
    ``{"line", "reason_code", "reason", "raw"|"record"}``. Temporary files go to
    ``workdir`` (default: the system temp dir; ``/tmp`` on Lambda) and are removed.
    ``databases``: where DuckDB's database comes from, kept open for the next conversion
    (a warm container's); by default one is opened for this conversion and closed after.

    Raises :class:`RejectedFile` for a file that cannot be converted; nothing useful is
    left on ``sink`` then (the caller discards it).
    """
    options = options or DatasetOptions()
    threads = threads or available_cpus()
    base = workdir or tempfile.gettempdir()
    name_parts = split_file_name(source_name.rsplit("/", 1)[-1]) if source_name else None
    declared = options.declared_schema()

    stats = StreamStats()
    raw = LimitedReader(source, options.max_file_bytes, stats)
    compression = detect_compression(raw.peek(4))
    name_compression = name_parts.compression if name_parts else None
    expected = (
        options.compression if options.compression not in (None, "none") else name_compression
    )
    if expected and compression != expected:
        raise RejectedFile(
            "malformed", f"the file is not {expected}-compressed as its name or options say"
        )
    if compression is None and stats.bytes_in == 0:
        raise RejectedFile("empty", "the file is empty")
    stream = DecompressedReader(raw, compression, options.max_decompression_ratio, stats)
    head = stream.peek(64 * 1024)
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise RejectedFile(
            "empty", "the file is empty" + (" once decompressed" if compression else "")
        )
    fmt = _detect_format(head, options, name_parts.format if name_parts else None)
    if fmt in TRANSCODED_FORMATS:
        _refuse_binary(head, options.encoding, fmt, compression is not None)
    elif fmt not in ("parquet", "avro", *TEXT_TABLE_FORMATS):
        raise RejectedFile("unsupported_format", f"format {fmt!r} is not supported")

    workdir = tempfile.mkdtemp(prefix="lakegov-", dir=base)
    run = _Run(options, exceptions_sink, workdir, threads, memory_limit, databases)
    failure: BaseException | None = None
    try:
        text = fmt in TRANSCODED_FORMATS
        spool = _readable_as_is(
            source, compression, options.encoding, head, stats, options.max_file_bytes
        )
        if spool is None:
            spool = os.path.join(workdir, "input")
            chunks = stream.chunks()
            _spool(utf8_chunks(chunks, options.encoding) if text else chunks, spool)
        if text and not _head(spool).strip(b" \t\r\n\xef\xbb\xbf"):
            raise RejectedFile("empty", "the file is empty")
        direct = _local_file(sink)
        out = direct or os.path.join(workdir, "output.parquet")
        names = ColumnNames(options.normalize_column_names)
        floors = (
            {f.name: f.type for f in previous_schema}
            if previous_schema is not None and declared is None
            else {}
        )
        delimiter = None
        dialect: CsvDialect | None = None
        hinted = DELIMITER_BY_EXTENSION.get(name_parts.extension or "") if name_parts else None
        if fmt == "csv" and options.delimiter is None and hinted:
            run.options = dataclasses.replace(options, delimiter=hinted)  # .tsv, .psv
        if fmt == "csv":
            rows_in, rows_out, dialect = _convert_csv(
                run, spool, out, names, declared, floors, row_group_rows
            )
            delimiter = dialect.delimiter
        elif fmt == "json":
            rows_in, rows_out, names = _convert_json(
                run, spool, out, declared, floors, row_group_rows
            )
        elif fmt in TEXT_TABLE_FORMATS:
            rows_in, rows_out, fmt = _convert_text_columns(
                run,
                read_text_columns(fmt, run.con, spool, run.options, workdir),
                out,
                names,
                declared,
                floors,
                row_group_rows,
            )
        else:
            rows_in, rows_out = _convert_binary(
                run, fmt, spool, out, names, declared, row_group_rows
            )
        if rows_in == 0:
            raise RejectedFile("empty", "the file has no data rows")
        if declared is not None and not all(f.nullable for f in declared):
            out = _required_columns(out, declared, workdir)
        metadata = pq.read_metadata(out)
        schema = metadata.schema.to_arrow_schema()
        _check_schema_change(previous_schema, schema, options)
        if direct is None:
            with open(out, "rb") as produced:
                shutil.copyfileobj(produced, sink, READ_CHUNK)
        elif out != direct:
            shutil.copyfile(out, direct)
        output_bytes = os.path.getsize(out)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        run.close(failure)
        shutil.rmtree(workdir, ignore_errors=True)

    seen = names.output_names()
    return ConversionResult(
        rows_in=rows_in,
        rows_out=rows_out,
        bad_row_count=run.bad_count,
        bad_rows=[BadRow(b.line, b.code, b.reason) for b in run.bad],
        schema=schema,
        schema_fingerprint=schema_fingerprint(schema),
        schema_diff=compare_schemas(previous_schema, schema),
        format=fmt,
        compression=compression,
        bytes_in=stats.bytes_in,
        bytes_decompressed=stats.bytes_decompressed,
        output_bytes=output_bytes,
        row_groups=metadata.num_row_groups,
        exceptions_written=run.exceptions_written,
        delimiter=delimiter,
        encoding=options.encoding if fmt in TRANSCODED_FORMATS else None,
        renamed_columns=names.renamed,
        missing_columns=(
            [f.name for f in previous_schema if f.name not in seen]
            if previous_schema is not None
            else []
        ),
        dialect=dialect,
    )


def _required_columns(path: str, declared: pa.Schema, workdir: str) -> str:
    """The Parquet file rewritten (in ``workdir``) with the declared non-nullable columns
    marked required (DuckDB writes every column optional); row group by row group, in
    bounded memory."""
    source = pq.ParquetFile(path)
    schema = pa.schema(
        [pa.field(f.name, source.schema_arrow.field(f.name).type, f.nullable) for f in declared]
    )
    required = os.path.join(workdir, "required.parquet")
    with pq.ParquetWriter(required, schema) as writer:
        for i in range(source.num_row_groups):
            writer.write_table(source.read_row_group(i).cast(schema))
    return required


def _local_file(sink: BinaryIO) -> str | None:
    """The path of ``sink`` when it is an empty local file opened for writing: DuckDB then
    writes the Parquet file there itself (no second copy in ``workdir``, no copying).
    ``None`` for anything else (a pipe, a buffer, a file with content)."""
    name = getattr(sink, "name", None)
    mode = getattr(sink, "mode", "")
    if not isinstance(name, str) or not isinstance(mode, str) or "w" not in mode:
        return None
    try:
        opened = os.fstat(sink.fileno())
        at_path = os.stat(name)
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    same = (opened.st_dev, opened.st_ino) == (at_path.st_dev, at_path.st_ino)
    if not (same and stat.S_ISREG(opened.st_mode) and opened.st_size == 0 and sink.tell() == 0):
        return None
    return name


def available_cpus() -> int:
    """The vCPUs this process may run on (a Lambda function's share of the host)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _readable_as_is(
    source: BinaryIO,
    compression: str | None,
    encoding: str,
    head: bytes,
    stats: StreamStats,
    limit: int,
) -> str | None:
    """The path of ``source`` when it is a local file DuckDB can read in place (plain
    UTF-8, not compressed): no copy to spool. ``None`` otherwise."""
    name = getattr(source, "name", None)
    if not isinstance(name, str) or compression is not None or not os.path.isfile(name):
        return None
    if codecs.lookup(encoding).name != "utf-8" or head.startswith((*UTF16_BOMS, UTF8_BOM)):
        return None
    size = os.path.getsize(name)
    if size > limit:
        raise RejectedFile("too_large", f"the file is larger than the limit of {limit} bytes")
    stats.bytes_in = stats.bytes_decompressed = size
    return name


def _check_schema_change(
    previous: pa.Schema | None, current: pa.Schema, options: DatasetOptions
) -> None:
    if previous is None or options.schema_changes == "any":
        return
    diff = compare_schemas(previous, current)
    # columns of the previous schema absent from this file are written as nulls: not removals
    if not change_allowed(diff.kind, options.schema_changes):
        raise RejectedFile(
            "schema_change",
            f"{diff.kind} change against the dataset's schema ({diff.describe()}); "
            f"the dataset allows {options.schema_changes} changes",
        )


def convert_file(
    src_path: str,
    dst_path: str,
    *,
    options: DatasetOptions | None = None,
    exceptions_path: str | None = None,
    previous_schema: pa.Schema | None = None,
) -> ConversionResult:
    """:func:`convert` between local files; ``dst_path`` appears only when it succeeded
    (written to a temporary name beside it, then renamed), and so does the exceptions file."""
    dst_dir = str(Path(dst_path).resolve().parent)
    fd, tmp = tempfile.mkstemp(prefix=".lakegov-", suffix=".parquet.part", dir=dst_dir)
    os.close(fd)  # reopened by name: the engine writes the Parquet file there directly
    exc_tmp: str | None = None
    exc_file: BinaryIO | None = None

    def open_exceptions() -> BinaryIO:
        nonlocal exc_tmp, exc_file
        if exceptions_path is None:
            raise ValueError("bad_rows='exceptions' needs an exceptions file")
        efd, exc_tmp = tempfile.mkstemp(
            prefix=".lakegov-",
            suffix=".jsonl.part",
            dir=str(Path(exceptions_path).resolve().parent),
        )
        exc_file = os.fdopen(efd, "wb")
        return exc_file

    try:
        with open(tmp, "wb") as sink, Path(src_path).open("rb") as source:
            result = convert(
                source,
                sink,
                options=options,
                source_name=src_path,
                previous_schema=previous_schema,
                exceptions_sink=open_exceptions,
            )
        if exc_file is not None:
            exc_file.close()
            assert exc_tmp is not None and exceptions_path is not None
            Path(exc_tmp).replace(exceptions_path)
        Path(tmp).replace(dst_path)
        return result
    except BaseException:
        if exc_file is not None:
            exc_file.close()
        for leftover in (tmp, exc_tmp):
            if leftover:
                Path(leftover).unlink(missing_ok=True)
        raise
