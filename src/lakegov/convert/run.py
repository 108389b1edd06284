"""What every conversion shares: its limits, its run (a DuckDB connection from the pool, the
bad rows set aside), the output column names, and the spool file it reads."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa

from lakegov.convert.databases import DuckDBPool
from lakegov.convert.dialect import CsvDialect
from lakegov.convert.options import DatasetOptions
from lakegov.convert.sql import WIDEN, fits, identifier, literal
from lakegov.convert.streams import (
    READ_CHUNK,
)
from lakegov.errors import RejectedFile
from lakegov.layout import normalize_identifier
from lakegov.schema import SchemaDiff, duckdb_type

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
class BadLine:
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


# --------------------------------------------------------------------------- the run


class Run:
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
        self.bad: list[BadLine] = []
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

    def set_aside(self, bad: list[BadLine], rows_in: int) -> None:
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


def spool_chunks(chunks: Iterator[bytes], path: str) -> None:
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)


def read_head(path: str, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _line_breaks(data: bytes) -> int:
    """Line ends in ``data``: LF, CR or CRLF (a physical line is what an editor shows)."""
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def lines_at(path: str, positions: list[int]) -> dict[int, int]:
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


def complete_lines(path: str) -> Iterator[tuple[int, bytes]]:
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


def declared_copy(
    run: Run,
    reader: str,
    declared: pa.Schema,
    text: dict[str, str],
    out: str,
    row_group_rows: int,
    lines_of: Callable[[list[int]], dict[int, int]],
    raw_record: Callable[[dict[str, Any]], Any],
) -> tuple[int, list[BadLine]]:
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
        bad.append(BadLine(lines[int(row[0])], "schema_mismatch", reason, raw_record(record)))
    run.clear_rejects()
    return run.copy(f"{query} WHERE {good}", out, row_group_rows), bad


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
