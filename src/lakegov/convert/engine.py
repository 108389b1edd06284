"""The streaming converter: one landed file in, one Parquet file out.

Design
======

Reading. The source is read forwards only, in 4 MiB chunks, through a byte limit
(``too_large``), a decompressor (gzip, bzip2, zstd, chosen by magic bytes) that stops a
decompression bomb while it streams (output/input ratio), and for text a transcoder to
UTF-8 (BOM dropped, declared encodings such as latin-1 decoded incrementally). Text is cut
into blocks of about 4 MiB at record boundaries (CSV: a newline outside quotes; JSON
Lines: a newline), and blocks are parsed by a thread pool, one pyarrow parser per block
(``use_threads=False`` inside a block, so pyarrow reports the record number of a bad row
and the pool keeps every core busy). A writer thread encodes Parquet while the pool
parses the next row group.

Schema stability (the hard part). A streaming reader that types a column from its first
block fails when a later block disagrees. Here no block decides for the file:

- CSV is parsed with every column as raw text. Each block infers, per column, the
  narrowest type of a widening lattice (null < bool | int64 < float64 or decimal(38,0) |
  date < timestamp < string; see :mod:`lakegov.convert.types`, which also keeps integers
  beyond 2**53 from being rounded to float64) that all its values parse as, starting from
  the type the column already has (so a text column costs nothing after the first block).
  Blocks are buffered up to a row group (1,048,576 rows, as ``pyarrow.parquet.write_table``
  uses, or 128 MiB); when the group is written its column types are the join over its
  blocks, and every block is converted from its *raw text* to that type, so nothing is
  lost: 50,000 empty fields then text is a string column; ints then floats is float64.
- JSON blocks are typed by pyarrow's JSON reader; a block whose values disagree within
  itself (or holds a malformed line) is split in halves until each part parses, then the
  parts are joined on the lattice (structs merge their fields, lists their item types).
- If a later row group needs a wider type than one already written (the rare case: the
  change comes more than a million rows in), the writer starts a new segment with the
  wider schema. Output goes to a spill file in ``workdir``; at the end a single segment is
  copied to the sink byte for byte, and several segments are rewritten once, row group by
  row group, widened to the final schema (only then can a number become its canonical text,
  e.g. ``1.50`` -> ``"1.5"``). Memory stays bounded by a few row groups either way.

A declared schema replaces inference: each block casts to it, a value that does not fit is
a bad row (``schema_mismatch``) and a missing non-nullable or undeclared column rejects the
file. Given the dataset's previous schema, inference starts from it (a column that was
float64 stays float64 when a file only has integers), absent columns are written as nulls,
and the change is classified with :func:`compare_schemas` and the dataset's policy.

Bad rows are never dropped silently: ``reject`` raises :class:`RejectedFile` naming the
first bad lines; ``exceptions`` writes each bad row (line, reason, raw text) as JSON Lines
to the exceptions sink and keeps the good rows. Lines are physical, 1-based line numbers
of the decompressed text (for JSON arrays, Avro and Parquet: the 1-based record number).

The engine writes only to ``sink`` (and temporary files in ``workdir``); it never seeks the
source, so the caller can stream from S3 and publish the sink under its final key when
:func:`convert` returns.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import json
import os
import queue
import re
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from lakegov.convert.layout import normalize_identifier
from lakegov.convert.options import DatasetOptions
from lakegov.convert.streams import (
    READ_CHUNK,
    UTF16_BOMS,
    Block,
    DecompressedReader,
    LimitedReader,
    StreamStats,
    csv_blocks,
    detect_compression,
    line_blocks,
    utf8_chunks,
)
from lakegov.convert.types import (
    DECIMAL_INT,
    LIST_ITEM,
    MAX_EXACT_INT,
    ColumnPath,
    SchemaDiff,
    compare_schemas,
    exact_schema,
    infer_text,
    join_schemas,
    join_types,
    schema_fingerprint,
    storable_type,
    try_cast,
    wide_int_paths,
    widen_array,
    widen_table,
)
from lakegov.errors import RejectedFile

ROW_GROUP_ROWS = 1024 * 1024  # pyarrow.parquet.write_table's default
ROW_GROUP_BYTES = 128 * 1024 * 1024
BLOCK_BYTES = 4 * 1024 * 1024
MAX_REPORTED_BAD_ROWS = 100
REJECT_LINES = 10
DELIMITERS = (",", ";", "\t", "|")
PARQUET_MAGIC = b"PAR1"
AVRO_MAGIC = b"Obj\x01"


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

    def summary(self) -> str:
        parts = [
            f"{self.format}{'+' + self.compression if self.compression else ''}",
            f"{self.rows_in} rows in",
            f"{self.rows_out} rows out",
            f"{len(self.schema)} columns",
            f"{self.row_groups} row groups",
            f"{self.output_bytes} bytes",
        ]
        if self.bad_row_count:
            parts.append(f"{self.bad_row_count} bad rows to exceptions")
        if self.schema_diff.kind != "none":
            parts.append(f"schema {self.schema_diff.kind}: {self.schema_diff.describe()}")
        return ", ".join(parts)


# --------------------------------------------------------------------------- pieces


class Piece:
    """Rows of one block, typed by that block alone, convertible to a wider type."""

    def __init__(
        self,
        typed: pa.Table,
        raw: dict[str, pa.Array] | None = None,
        wide: frozenset[ColumnPath] | None = None,
    ) -> None:
        self.typed = typed
        self.raw = raw  # CSV: the validated text of each column, to re-type without loss
        # integer columns holding values a float64 would round (see types.exact_schema)
        self.wide = wide_int_paths(typed) if wide is None else wide

    @property
    def num_rows(self) -> int:
        return self.typed.num_rows

    @property
    def nbytes(self) -> int:
        extra = sum(a.nbytes for a in self.raw.values()) if self.raw else 0
        return self.typed.nbytes + extra

    def slice(self, offset: int, length: int) -> Piece:
        raw = {k: v.slice(offset, length) for k, v in self.raw.items()} if self.raw else None
        # ``wide`` is kept whole: a column's integers and floats must not be split apart
        return Piece(self.typed.slice(offset, length), raw, self.wide)

    def column(self, name: str, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
        idx = self.typed.schema.get_field_index(name)
        if idx < 0:
            return pa.nulls(self.num_rows, target)
        typed = self.typed.column(idx)
        if typed.type == target:
            return typed
        if self.raw is not None and name in self.raw:
            text = self.raw[name]
            if pa.types.is_string(target):
                return text
            converted = try_cast(text, target)
            if converted is not None:
                return converted
        return widen_array(typed, target)


@dataclass
class BlockResult:
    piece: Piece | None
    rows_in: int
    bad: list[tuple[int, str, str, Any]]  # (line, code, reason, raw)


# --------------------------------------------------------------------------- names


class ColumnNames:
    """Maps source column names to output names (normalised, de-duplicated), stably."""

    def __init__(self, normalize: bool, reserved: list[str] | None = None) -> None:
        self._normalize = normalize
        self._map: dict[str, str] = {}
        self._used: set[str] = set(reserved or [])
        self._lock = threading.Lock()
        self._extra_renamed: dict[str, str] = {}  # repeated or empty header names

    def __call__(self, raw: str) -> str:
        with self._lock:
            out = self._map.get(raw)
            if out is not None:
                return out
            base = normalize_identifier(raw, prefix="c") if self._normalize else raw
            base = base or f"col_{len(self._map) + 1}"
            out, n = base, 1
            while out in self._used:
                n += 1
                out = f"{base}_{n}"
            self._used.add(out)
            self._map[raw] = out
            return out

    def header(self, fields: list[str]) -> list[str]:
        """Output names for a header's fields, one distinct name per position: a repeated
        name gets ``_2``, ``_3``... and an empty one ``col_<position>``, so that no
        column's values are lost to another of the same name."""
        out = []
        first: set[str] = set()
        for i, raw in enumerate(fields):
            if raw in first or not raw.strip():
                out.append(self._extra(raw, i + 1))
            else:
                first.add(raw)
                out.append(self(raw))
        return out

    def _extra(self, raw: str, position: int) -> str:
        with self._lock:
            base = normalize_identifier(raw, prefix="c") if self._normalize else raw.strip()
            base = base or f"col_{position}"
            out, n = base, 1
            while out in self._used:
                n += 1
                out = f"{base}_{n}"
            self._used.add(out)
            self._extra_renamed[f"{raw} (column {position})"] = out
            return out

    def output_names(self) -> set[str]:
        with self._lock:
            return set(self._map.values())

    @property
    def renamed(self) -> dict[str, str]:
        renamed = {k: v for k, v in self._map.items() if k != v}
        return renamed | self._extra_renamed


# --------------------------------------------------------------------------- writer


class _BackgroundWriter:
    """Encodes Parquet on its own thread so that parsing and encoding overlap."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        writer: pq.ParquetWriter | None = None
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._error is not None:
                continue
            op, arg = item
            try:
                if op == "open":
                    path, schema = arg
                    writer = pq.ParquetWriter(path, schema)
                elif op == "write":
                    assert writer is not None
                    writer.write_table(arg, row_group_size=max(arg.num_rows, 1))
                elif op == "close":
                    if writer is not None:
                        writer.close()
                    writer = None
            except BaseException as exc:  # re-raised on the caller's thread
                self._error = exc

    def submit(self, op: str, arg: Any = None) -> None:
        self._check()
        self._queue.put((op, arg))

    def finish(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        self._check()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _check(self) -> None:
        if self._error is not None:
            raise self._error


class SegmentedWriter:
    """Buffers pieces into row groups, decides each group's types, writes segments."""

    def __init__(
        self, workdir: str, seed: pa.Schema | None, row_group_rows: int, row_group_bytes: int
    ) -> None:
        self._dir = workdir
        self.schema = seed if seed is not None else pa.schema([])  # the join so far
        self._nullable = {f.name: f.nullable for f in self.schema}  # declared NOT NULL kept
        self._rows = row_group_rows
        self._bytes = row_group_bytes
        self._pieces: list[Piece] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self.segments: list[tuple[str, pa.Schema]] = []
        self._wide: frozenset[ColumnPath] = frozenset()  # wide integer columns seen so far
        self.row_groups = 0
        self.rows_out = 0
        self._writer = _BackgroundWriter()
        self.on_schema: Callable[[pa.Schema], None] | None = None

    def floors(self) -> dict[str, pa.DataType]:
        return {f.name: f.type for f in self.schema}

    def add(self, piece: Piece) -> None:
        self._pieces.append(piece)
        self._buffered_rows += piece.num_rows
        self._buffered_bytes += piece.nbytes
        while self._buffered_rows >= self._rows:
            self._flush(self._rows)
        if self._buffered_bytes >= self._bytes:
            self._flush(self._buffered_rows)

    def _flush(self, rows: int) -> None:
        take: list[Piece] = []
        need = rows
        while need > 0 and self._pieces:
            piece = self._pieces[0]
            if piece.num_rows <= need:
                take.append(self._pieces.pop(0))
                need -= piece.num_rows
            else:
                take.append(piece.slice(0, need))
                self._pieces[0] = piece.slice(need, piece.num_rows - need)
                need = 0
        self._buffered_rows = sum(p.num_rows for p in self._pieces)
        self._buffered_bytes = sum(p.nbytes for p in self._pieces)
        if not take:
            return
        schema = self.schema
        for piece in take:
            schema = join_schemas(schema, piece.typed.schema)
            self._wide |= piece.wide
        schema = exact_schema(schema, self._wide)
        schema = pa.schema(
            [
                pa.field(f.name, storable_type(f.type), nullable=self._nullable.get(f.name, True))
                for f in schema
            ]
        )
        if schema != self.schema or not self.segments:
            if self.on_schema is not None:
                self.on_schema(schema)
            self._open_segment(schema)
        self.schema = schema
        columns = [
            pa.chunked_array(_chunks([p.column(f.name, f.type) for p in take]), type=f.type)
            for f in schema
        ]
        table = pa.Table.from_arrays(columns, schema=schema)
        self._writer.submit("write", table)
        self.row_groups += 1
        self.rows_out += table.num_rows

    def _open_segment(self, schema: pa.Schema) -> None:
        if self.segments:
            self._writer.submit("close")
        fd, path = tempfile.mkstemp(prefix="lakegov-", suffix=".parquet", dir=self._dir)
        os.close(fd)
        self.segments.append((path, schema))
        self._writer.submit("open", (path, schema))

    def finish(self, sink: BinaryIO) -> int:
        """Write everything still buffered, then the final file to ``sink``; bytes written."""
        if self._buffered_rows:
            self._flush(self._buffered_rows)
        self._writer.submit("close")
        self._writer.finish()
        if not self.segments:
            return 0
        if len(self.segments) == 1:
            with Path(self.segments[0][0]).open("rb") as src:
                return _copy(src, sink)
        final = self.schema
        counting = _CountingSink(sink)
        with pq.ParquetWriter(counting, final) as out:
            for path, _schema in self.segments:
                pf = pq.ParquetFile(path)
                for i in range(pf.num_row_groups):
                    group = pf.read_row_group(i)
                    out.write_table(
                        widen_table(group, final), row_group_size=max(group.num_rows, 1)
                    )
        return counting.written

    def abort(self) -> None:
        if self._writer.running:
            with contextlib.suppress(BaseException):
                self._writer.submit("close")
                self._writer.finish()
        self.cleanup()

    def cleanup(self) -> None:
        for path, _ in self.segments:
            Path(path).unlink(missing_ok=True)


def _chunks(arrays: list[pa.Array | pa.ChunkedArray]) -> list[pa.Array]:
    out: list[pa.Array] = []
    for arr in arrays:
        if isinstance(arr, pa.ChunkedArray):
            out.extend(arr.chunks)
        else:
            out.append(arr)
    return out


class _CountingSink(io.RawIOBase):
    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = self._sink.write(data)
        n = len(data) if n is None else n
        self.written += n
        return n

    def flush(self) -> None:
        self._sink.flush()


def _copy(src: IO[bytes], sink: BinaryIO) -> int:
    total = 0
    while chunk := src.read(READ_CHUNK):
        sink.write(chunk)
        total += len(chunk)
    return total


# --------------------------------------------------------------------------- bad rows


def _find_bad(
    arr: pa.Array, convert: Callable[[pa.Array], pa.Array | None], offset: int = 0
) -> list[int]:
    """Indices of values that ``convert`` refuses, by bisection (cheap when they are few)."""
    if len(arr) == 0 or convert(arr) is not None:
        return []
    if len(arr) == 1:
        return [offset]
    mid = len(arr) // 2
    return _find_bad(arr.slice(0, mid), convert, offset) + _find_bad(
        arr.slice(mid), convert, offset + mid
    )


def _utf8(arr: pa.Array) -> pa.Array | None:
    return try_cast(arr, pa.string())


def _declared_cast(arr: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array | None:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type == target:
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    if join_types(arr.type, target) == target:
        try:
            return widen_array(arr, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    return try_cast(arr, target)


def _apply_declared(
    columns: dict[str, pa.Array], nrows: int, declared: pa.Schema
) -> tuple[pa.Table, dict[int, tuple[str, str]]]:
    """Cast ``columns`` to the declared schema; returns the table and {row: (code, reason)}."""
    bad: dict[int, tuple[str, str]] = {}
    arrays = []
    for f in declared:
        arr = columns.get(f.name)
        if arr is None:
            arrays.append(pa.nulls(nrows, f.type))
            if not f.nullable and nrows:
                for i in range(nrows):
                    bad.setdefault(
                        i, ("schema_mismatch", f"column {f.name} is missing and not nullable")
                    )
            continue
        converted = _declared_cast(arr, f.type)
        if converted is None:
            flat = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
            for i in _find_bad(flat, functools.partial(_declared_cast, target=f.type)):
                value = flat[i].as_py()
                bad.setdefault(
                    i, ("schema_mismatch", f"column {f.name}: {value!r} is not a valid {f.type}")
                )
            mask = np.ones(nrows, dtype=bool)
            mask[list(bad)] = False
            keep = pa.array(mask)
            converted = _declared_cast(pc.filter(flat, keep), f.type)
            assert converted is not None
            # put placeholders back so that every column keeps nrows rows until filtering
            converted = _scatter(converted, mask, f.type)
        if not f.nullable and converted.null_count:
            for i in np.flatnonzero(np.asarray(converted.is_null())).tolist():
                bad.setdefault(
                    int(i),
                    ("schema_mismatch", f"column {f.name} is null but declared not nullable"),
                )
        arrays.append(converted)
    return pa.Table.from_arrays(
        arrays, schema=pa.schema([pa.field(f.name, f.type) for f in declared])
    ), bad


def _scatter(values: pa.Array, mask: np.ndarray, t: pa.DataType) -> pa.Array:
    """An array of len(mask) with ``values`` where mask is True and nulls elsewhere."""
    idx = np.full(len(mask), -1, dtype=np.int64)
    idx[mask] = np.arange(int(mask.sum()))
    indices = pa.array(idx, mask=~mask)
    return values.take(indices)


# --------------------------------------------------------------------------- CSV


@dataclass
class CsvContext:
    header: list[str]  # output names, in column order
    delimiter: str
    quotechar: str
    null_values: list[str]
    declared: pa.Schema | None
    floors: dict[str, pa.DataType]


def _record_lines(data: bytes, quote: bytes) -> list[int]:
    """0-based line offset of each record start in ``data`` (blank lines are not records)."""
    starts = []
    inside = False
    for i, line in enumerate(data.split(b"\n")):
        if not inside and line.strip(b"\r"):
            starts.append(i)
        if line.count(quote) % 2:
            inside = not inside
    return starts


def parse_csv_block(block: Block, ctx: CsvContext) -> BlockResult:
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    internal = [f"c{i}" for i in range(len(ctx.header))]
    try:
        table = pacsv.read_csv(
            io.BytesIO(block.data),
            read_options=pacsv.ReadOptions(
                column_names=internal, use_threads=False, block_size=len(block.data) + 1
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=ctx.delimiter,
                quote_char=ctx.quotechar,
                newlines_in_values=True,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.binary() for n in internal},
                null_values=ctx.null_values,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise RejectedFile(
            "malformed",
            f"CSV near line {block.start_line} cannot be parsed: {exc}",
            [block.start_line],
        ) from exc

    nrows = table.num_rows
    record_lines: list[int] | None = None

    def lines() -> list[int]:
        nonlocal record_lines
        if record_lines is None:
            record_lines = [
                block.start_line + x for x in _record_lines(block.data, ctx.quotechar.encode())
            ]
        return record_lines

    bad_entries: list[tuple[int, str, str, Any]] = []
    for number, row_text in invalid:
        ln = lines()[number - 1] if number - 1 < len(lines()) else block.start_line
        bad_entries.append((ln, "ragged_rows", f"expected {len(ctx.header)} fields", row_text))
    skipped = sorted(n for n, _ in invalid)

    def row_line(i: int) -> int:
        # kept row i is record number i+1 plus the skipped records before it
        rec = i + 1
        for s in skipped:
            if s <= rec:
                rec += 1
        all_lines = lines()
        return all_lines[rec - 1] if rec - 1 < len(all_lines) else block.start_line

    row_bad: dict[int, tuple[str, str]] = {}
    text: dict[str, pa.Array] = {}
    for name, col in zip(ctx.header, table.columns, strict=True):
        arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        converted = _utf8(arr)
        if converted is None:
            bad_idx = _find_bad(arr, _utf8)
            for i in bad_idx:
                row_bad.setdefault(
                    i,
                    ("encoding", f"column {name} is not valid UTF-8 (declare the file's encoding)"),
                )
            keep = np.ones(nrows, dtype=bool)
            keep[bad_idx] = False
            good = _utf8(pc.filter(arr, pa.array(keep)))
            assert good is not None
            converted = _scatter(good, keep, pa.string())
        text[name] = converted

    if ctx.declared is not None:
        typed, declared_bad = _apply_declared(text, nrows, ctx.declared)
        for i, v in declared_bad.items():
            row_bad.setdefault(i, v)
        raw = None
    else:
        arrays = []
        fields = []
        for name in ctx.header:
            t, arr = infer_text(text[name], ctx.floors.get(name, pa.null()))
            arrays.append(arr)
            fields.append(pa.field(name, t))
        typed = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        raw = text

    if row_bad:
        records = pa.Table.from_arrays([text[n] for n in ctx.header], names=ctx.header)
        for i in sorted(row_bad):
            code, reason = row_bad[i]
            bad_entries.append((row_line(i), code, reason, records.slice(i, 1).to_pylist()[0]))
        keep = np.ones(nrows, dtype=bool)
        keep[list(row_bad)] = False
        mask = pa.array(keep)
        typed = typed.filter(mask)
        if raw is not None:
            raw = {k: pc.filter(v, mask) for k, v in raw.items()}
        # a row that failed in one column may have re-typed another: re-infer from the kept text
        if ctx.declared is None and raw is not None:
            arrays, fields = [], []
            for name in ctx.header:
                t, arr = infer_text(raw[name], ctx.floors.get(name, pa.null()))
                arrays.append(arr)
                fields.append(pa.field(name, t))
            typed = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    bad_entries.sort(key=lambda e: e[0])
    return BlockResult(Piece(typed, raw), nrows + len(invalid), bad_entries)


def sniff_delimiter(sample: str, quotechar: str) -> str:
    """The delimiter among , ; TAB | that splits the sample's lines most consistently."""
    lines = sample.splitlines()
    if len(lines) > 1 and not sample.endswith(("\n", "\r")):
        lines = lines[:-1]  # the last line may be cut
    lines = [ln for ln in lines[:50] if ln.strip()]
    best, best_score = ",", (-1, 0)
    for delim in DELIMITERS:
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=delim, quotechar=quotechar)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for c in counts if c == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delim, score
    return best


def _read_header(first_block: bytes, ctx_delim: str, quotechar: str) -> tuple[list[str], int]:
    """The header fields of the first record and its length in bytes (it may span lines)."""
    text = first_block.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=ctx_delim, quotechar=quotechar)
    try:
        fields = next(reader)
    except StopIteration:
        return [], len(first_block)
    except csv.Error as exc:
        raise RejectedFile("malformed", f"the CSV header cannot be parsed: {exc}", [1]) from exc
    # byte length of the header record: count its physical lines
    nlines = reader.line_num
    end = 0
    for _ in range(nlines):
        nxt = first_block.find(b"\n", end)
        end = len(first_block) if nxt < 0 else nxt + 1
    return fields, end


# --------------------------------------------------------------------------- JSON


@dataclass
class JsonContext:
    names: ColumnNames
    declared: pa.Schema | None
    records: bool  # True: "lines" are record numbers (JSON arrays)


def _read_json_bytes(data: bytes, schema: pa.Schema | None = None) -> pa.Table:
    table = pajson.read_json(
        io.BytesIO(data),
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1024)),
        parse_options=pajson.ParseOptions(explicit_schema=schema),
    )
    if schema is None and _has_float(table.schema) and _LONG_INT.search(data):
        table = _exact_json(data, table)
    return table


# An integer literal of 16 or more digits: the only kind a float64 may round (2**53 has 16).
_LONG_INT = re.compile(rb"(?<![\w.])-?[0-9]{16,}(?![\w.])")


def _has_float(schema: pa.Schema | pa.DataType) -> bool:
    types = [f.type for f in schema] if isinstance(schema, pa.Schema) else [schema]
    for t in types:
        if pa.types.is_floating(t):
            return True
        if pa.types.is_struct(t) and _has_float(pa.schema(list(t))):
            return True
        if pa.types.is_list(t) and _has_float(t.value_type):
            return True
    return False


class _FloatText(str):
    """A JSON float literal kept as written."""


@dataclass
class _NumberPath:
    wide: bool = False  # an integer beyond +-2**53
    beyond_int64: bool = False
    beyond_decimal: bool = False  # more than 38 digits
    floats: bool = False


def _scan_numbers(value: Any, path: ColumnPath, seen: dict[ColumnPath, _NumberPath]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _scan_numbers(v, (*path, k), seen)
    elif isinstance(value, list):
        for v in value:
            _scan_numbers(v, (*path, LIST_ITEM), seen)
    elif isinstance(value, _FloatText):
        seen.setdefault(path, _NumberPath()).floats = True
    elif isinstance(value, int) and not isinstance(value, bool):
        info = seen.setdefault(path, _NumberPath())
        if abs(value) > MAX_EXACT_INT:
            info.wide = True
            info.beyond_int64 |= not -(2**63) <= value < 2**63
            info.beyond_decimal |= len(str(abs(value))) > 38


def _as_text_at(value: Any, path: ColumnPath, text: frozenset[ColumnPath]) -> Any:
    """``value`` ready for json.dumps: numbers at a ``text`` path as strings (as written)."""
    if isinstance(value, dict):
        return {k: _as_text_at(v, (*path, k), text) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text_at(v, (*path, LIST_ITEM), text) for v in value]
    if isinstance(value, _FloatText):
        return str(value) if path in text else float(value)
    if isinstance(value, int) and not isinstance(value, bool) and path in text:
        return str(value)
    return value


def _retype(t: pa.DataType, path: ColumnPath, new: dict[ColumnPath, pa.DataType]) -> pa.DataType:
    if path in new and pa.types.is_floating(t):
        return new[path]
    if pa.types.is_struct(t):
        return pa.struct(
            [
                pa.field(t.field(i).name, _retype(t.field(i).type, (*path, t.field(i).name), new))
                for i in range(t.num_fields)
            ]
        )
    if pa.types.is_list(t):
        return pa.list_(_retype(t.value_type, (*path, LIST_ITEM), new))
    return t


def _exact_json(data: bytes, table: pa.Table) -> pa.Table:
    """Re-read ``data`` when pyarrow typed as float64 a field holding integers it cannot
    keep: int64 when they fit, decimal(38,0) beyond, text when the field also holds floats
    or an integer of more than 38 digits (numbers then written as in the file)."""
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    try:
        records = [json.loads(ln, parse_float=_FloatText) for ln in lines]
    except ValueError:
        return table  # JSON pyarrow accepts but Python does not: keep pyarrow's reading
    seen: dict[ColumnPath, _NumberPath] = {}
    for record in records:
        _scan_numbers(record, (), seen)
    new: dict[ColumnPath, pa.DataType] = {}
    for path, info in seen.items():
        if not info.wide:
            continue
        if info.floats or info.beyond_decimal:
            new[path] = pa.string()
        else:
            new[path] = DECIMAL_INT if info.beyond_int64 else pa.int64()
    schema = pa.schema([pa.field(f.name, _retype(f.type, (f.name,), new)) for f in table.schema])
    if schema == table.schema:
        return table
    text = frozenset(p for p, t in new.items() if pa.types.is_string(t))
    if text:
        data = b"\n".join(
            json.dumps(_as_text_at(r, (), text), ensure_ascii=False).encode("utf-8")
            for r in records
        )
    return _read_json_bytes(data, schema)


def _join_tables(tables: list[pa.Table]) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    schema = tables[0].schema
    for t in tables[1:]:
        schema = join_schemas(schema, t.schema)
    return pa.concat_tables([widen_table(t, schema) for t in tables])


def _json_lines_table(
    lines: list[bytes], first_line: int
) -> tuple[list[pa.Table], list[tuple[int, str, str, Any]]]:
    """Parse lines that pyarrow refused together: split until parts parse; single bad
    lines become bad rows."""
    data = b"\n".join(lines)
    if not data.strip():
        return [], []
    try:
        return [_read_json_bytes(data)], []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(lines) > 64:
        mid = len(lines) // 2
        t1, b1 = _json_lines_table(lines[:mid], first_line)
        t2, b2 = _json_lines_table(lines[mid:], first_line + mid)
        return t1 + t2, b1 + b2
    tables: list[pa.Table] = []
    bad: list[tuple[int, str, str, Any]] = []
    good: list[bytes] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except UnicodeDecodeError:
            bad.append(
                (
                    first_line + i,
                    "encoding",
                    "the line is not valid UTF-8",
                    line.decode("utf-8", "replace"),
                )
            )
            continue
        except ValueError as exc:
            bad.append(
                (
                    first_line + i,
                    "malformed",
                    f"not valid JSON: {exc}",
                    line.decode("utf-8", "replace"),
                )
            )
            continue
        if not isinstance(value, dict):
            bad.append(
                (first_line + i, "malformed", "not a JSON object", line.decode("utf-8", "replace"))
            )
            continue
        good.append(line)
    if good:
        try:
            tables.append(_read_json_bytes(b"\n".join(good)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for i, line in enumerate(lines):
                if not line.strip() or line not in good:
                    continue
                try:
                    tables.append(_read_json_bytes(line))
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    bad.append(
                        (
                            first_line + i,
                            "malformed",
                            f"value cannot be represented: {exc}",
                            line.decode("utf-8", "replace"),
                        )
                    )
    return tables, bad


def parse_json_block(block: Block, ctx: JsonContext) -> BlockResult:
    bad: list[tuple[int, str, str, Any]] = []
    try:
        tables = [_read_json_bytes(block.data)] if block.data.strip() else []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        lines = block.data.split(b"\n")
        tables, bad = _json_lines_table(lines, block.start_line)
        bad.sort(key=lambda e: e[0])
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return BlockResult(None, len(bad), bad)
    table = _join_tables(tables)
    table = table.rename_columns([ctx.names(n) for n in table.column_names])
    rows_in = table.num_rows + len(bad)
    if ctx.declared is not None:
        undeclared = [n for n in table.column_names if n not in ctx.declared.names]
        if undeclared:
            raise RejectedFile(
                "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
            )
        columns = {n: table.column(n) for n in table.column_names}
        typed, row_bad = _apply_declared(columns, table.num_rows, ctx.declared)
        if row_bad:
            # JSON rows cannot be mapped back to lines cheaply after a merge of parts; the
            # record's position among the block's parsed rows gives it exactly when no line
            # of the block was bad or blank, which is the case we can check.
            line_of = _json_row_lines(block, bad, table.num_rows, ctx.records)
            records = table.select(list(columns))
            for i in sorted(row_bad):
                code, reason = row_bad[i]
                bad.append(
                    (line_of(i), code, reason, _jsonable(records.slice(i, 1).to_pylist()[0]))
                )
            keep = np.ones(table.num_rows, dtype=bool)
            keep[list(row_bad)] = False
            typed = typed.filter(pa.array(keep))
            bad.sort(key=lambda e: e[0])
        table = typed
    return BlockResult(Piece(table), rows_in, bad)


def _json_row_lines(
    block: Block, bad: list[tuple[int, str, str, Any]], nrows: int, records: bool
) -> Callable[[int], int]:
    lines = block.data.split(b"\n")
    bad_lines = {b[0] for b in bad}
    real = [
        block.start_line + i
        for i, ln in enumerate(lines)
        if ln.strip() and block.start_line + i not in bad_lines
    ]
    return lambda i: real[i] if i < len(real) else block.start_line


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def json_document_blocks(chunks: Iterator[bytes], target: int) -> Iterator[Block]:
    """JSON Lines blocks from a JSON array or from concatenated (pretty-printed) objects;
    each block's ``start_line`` is the 1-based number of its first record."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    parser = json.JSONDecoder()
    buf = ""
    pos = 0
    eof = False
    in_array: bool | None = None
    record = 0
    out: list[bytes] = []
    out_size = 0
    first_record = 1
    index = 0

    def more() -> None:
        nonlocal buf, pos, eof
        chunk = next(chunks, None)
        try:
            if chunk is None:
                eof = True
                buf = buf[pos:] + decoder.decode(b"", final=True)
            else:
                buf = buf[pos:] + decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise RejectedFile("encoding", "the JSON document is not valid UTF-8") from exc
        pos = 0

    def skip_ws() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf) or eof:
                return
            more()

    while True:
        skip_ws()
        if pos >= len(buf):
            break
        if in_array is None:
            in_array = buf[pos] == "["
            if in_array:
                pos += 1
                continue
        if in_array and buf[pos] == "]":
            pos += 1
            skip_ws()
            if pos < len(buf):
                raise RejectedFile(
                    "malformed", f"unexpected data after the JSON array (record {record})"
                )
            break
        if in_array and record > 0:
            if buf[pos] != ",":
                raise RejectedFile(
                    "malformed", f"expected ',' or ']' after record {record}", [record]
                )
            pos += 1
            skip_ws()
        while True:
            try:
                value, end = parser.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                if eof:
                    raise RejectedFile(
                        "malformed",
                        f"record {record + 1} is not valid JSON: {exc.msg}",
                        [record + 1],
                    ) from exc
                more()
                skip_ws()
        pos = end
        record += 1
        # non-objects are kept too: the block parser reports them as bad rows
        line = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
        out.append(line)
        out_size += len(line)
        if out_size >= target:
            yield Block(index, b"".join(out), first_record)
            index += 1
            first_record = record + 1
            out, out_size = [], 0
        if pos > READ_CHUNK:
            buf, pos = buf[pos:], 0
    if out:
        yield Block(index, b"".join(out), first_record)


# --------------------------------------------------------------------------- Avro


def _avro_type(schema: Any, named: dict[str, pa.DataType]) -> tuple[pa.DataType, bool]:
    """(arrow type, nullable) for an Avro schema; raises ValueError when unsupported."""
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"union {schema} (only [null, T] unions are supported)")
        t, _ = _avro_type(branches[0], named)
        return t, True
    if isinstance(schema, str):
        simple = {
            "null": pa.null(),
            "boolean": pa.bool_(),
            "int": pa.int32(),
            "long": pa.int64(),
            "float": pa.float32(),
            "double": pa.float64(),
            "bytes": pa.binary(),
            "string": pa.string(),
        }
        if schema in simple:
            return simple[schema], schema == "null"
        if schema in named:
            return named[schema], False
        raise ValueError(f"type {schema!r}")
    logical = schema.get("logicalType")
    kind = schema["type"]
    if logical == "date":
        return pa.date32(), False
    if logical == "timestamp-millis":
        return pa.timestamp("ms", tz="UTC"), False
    if logical == "timestamp-micros":
        return pa.timestamp("us", tz="UTC"), False
    if logical == "decimal":
        return pa.decimal128(schema["precision"], schema.get("scale", 0)), False
    if logical == "uuid":
        return pa.string(), False
    if kind == "record":
        fields = []
        for f in schema["fields"]:
            t, _ = _avro_type(f["type"], named)
            fields.append(pa.field(f["name"], t, nullable=True))
        st = pa.struct(fields)
        named[schema["name"]] = st
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = st
        return st, False
    if kind == "array":
        return pa.list_(_avro_type(schema["items"], named)[0]), False
    if kind == "map":
        return pa.map_(pa.string(), _avro_type(schema["values"], named)[0]), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(), False
    return _avro_type(kind, named)


def avro_pieces(stream: DecompressedReader, batch_rows: int) -> Iterator[tuple[pa.Table, int]]:
    import fastavro  # imported here: only Avro files need it

    try:
        reader = fastavro.reader(stream)  # type: ignore[arg-type]
        schema = reader.writer_schema
    except Exception as exc:  # fastavro raises many types for a bad header
        if isinstance(exc, RejectedFile):
            raise
        raise RejectedFile("malformed", f"not a readable Avro file: {exc}") from exc
    arrow: pa.Schema | None
    try:
        top, _ = _avro_type(schema, {})
        arrow = pa.schema(list(top)) if pa.types.is_struct(top) else None
    except (ValueError, KeyError, TypeError):
        arrow = None  # unsupported shapes: let Arrow infer from the values
    batch: list[Any] = []
    first = 1
    count = 0
    try:
        for rec in reader:
            batch.append(rec)
            count += 1
            if len(batch) >= batch_rows:
                yield _avro_table(batch, arrow), first
                first = count + 1
                batch = []
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile(
            "malformed", f"Avro record {count + 1} cannot be read: {exc}", [count + 1]
        ) from exc
    if batch:
        yield _avro_table(batch, arrow), first


def _avro_table(batch: list[Any], schema: pa.Schema | None) -> pa.Table:
    if schema is not None:
        try:
            return pa.Table.from_pylist(batch, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    try:
        return pa.Table.from_pylist(batch)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RejectedFile(
            "unsupported_format", f"Avro values cannot be represented: {exc}"
        ) from exc


# --------------------------------------------------------------------------- driver


def _detect_format(head: bytes, options: DatasetOptions, name_format: str | None) -> str:
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(AVRO_MAGIC):
        return "avro"
    if options.format:
        return options.format
    if name_format:
        return name_format
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"["):
        return "json"
    return "csv"


ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and .doc) files
SPREADSHEET_HINT = "spreadsheets are not supported: export the sheet as CSV"


def _refuse_binary(head: bytes, encoding: str, fmt: str, compressed: bool) -> None:
    """Reject, from the first decompressed bytes, a file that is not text at all (an
    image, a workbook, random bytes), which would otherwise fail later with a misleading
    reason. A NUL byte never occurs in text of an 8-bit or UTF-8 encoding."""
    if head.startswith(ZIP_MAGIC):
        raise RejectedFile(
            "unsupported_format",
            "the file is a ZIP archive (an .xlsx workbook is one); "
            f"{SPREADSHEET_HINT}, or compress with gzip, bzip2 or zstd",
        )
    if head.startswith(OLE2_MAGIC):
        raise RejectedFile(
            "unsupported_format", f"the file is an Office document (.xls); {SPREADSHEET_HINT}"
        )
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


class _Run:
    """State of one conversion: counters, bad rows, the exceptions output."""

    def __init__(
        self, options: DatasetOptions, exceptions_sink: Callable[[], BinaryIO] | None
    ) -> None:
        self.options = options
        self.rows_in = 0
        self.bad_count = 0
        self.bad_rows: list[BadRow] = []
        self._open_exceptions = exceptions_sink
        self._exceptions: BinaryIO | None = None
        self.exceptions_written = 0

    def take(self, result: BlockResult, writer: SegmentedWriter) -> None:
        self.rows_in += result.rows_in
        if result.bad:
            self._bad(result.bad)
        if result.piece is not None and result.piece.num_rows:
            writer.add(result.piece)

    def _bad(self, bad: list[tuple[int, str, str, Any]]) -> None:
        if self.options.bad_rows == "reject":
            line, code, reason, _ = bad[0]
            lines = [b[0] for b in bad[:REJECT_LINES]]
            more = (
                f" (and {len(bad) - 1} more in the same part of the file)" if len(bad) > 1 else ""
            )
            raise RejectedFile(code, f"line {line}: {reason}{more}", lines)
        if self._exceptions is None:
            if self._open_exceptions is None:
                raise ValueError("bad_rows='exceptions' needs an exceptions sink")
            self._exceptions = self._open_exceptions()
        records = []
        for line, code, reason, raw in bad:
            self.bad_count += 1
            if len(self.bad_rows) < MAX_REPORTED_BAD_ROWS:
                self.bad_rows.append(BadRow(line, code, reason))
            entry = {"line": line, "reason_code": code, "reason": reason}
            entry["raw" if isinstance(raw, str) else "record"] = raw
            records.append(json.dumps(entry, ensure_ascii=False, default=str))
        self._exceptions.write(("\n".join(records) + "\n").encode("utf-8"))
        self.exceptions_written += len(records)


def _pipeline(
    blocks: Iterator[Block],
    work: Callable[[Block], BlockResult],
    threads: int,
    run: _Run,
    writer: SegmentedWriter,
) -> None:
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convert")
    pending: deque[Future[BlockResult]] = deque()
    try:
        for block in blocks:
            pending.append(pool.submit(work, block))
            while len(pending) > threads + 1:
                run.take(pending.popleft().result(), writer)
        while pending:
            run.take(pending.popleft().result(), writer)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


_POOL_LOCK = threading.Lock()


def use_block_friendly_memory_pool() -> None:
    """Make jemalloc (else the system allocator) pyarrow's default pool, once per process.

    Block-wise parsing on several threads allocates and frees many mid-sized buffers;
    with pyarrow's default mimalloc pool that churn returned pages to the kernel and
    doubled the parse CPU time in our measurements (benchmarks/README.md). Arrays already
    allocated from another pool stay valid.
    """
    with _POOL_LOCK:
        current = pa.default_memory_pool().backend_name
        if current in ("jemalloc", "system"):
            return
        try:
            pool = pa.jemalloc_memory_pool()
        except (pa.ArrowNotImplementedError, NotImplementedError):
            pool = pa.system_memory_pool()
        pa.set_memory_pool(pool)


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
    row_group_bytes: int = ROW_GROUP_BYTES,
    block_bytes: int = BLOCK_BYTES,
) -> ConversionResult:
    """Convert one file read forwards from ``source`` into one Parquet file on ``sink``.

    ``source_name`` (the key or path) gives format and compression hints from its
    extensions; content wins where it is unambiguous (magic bytes). ``previous_schema`` is
    the dataset's current schema (from the catalog), if any. ``exceptions_sink`` is called
    once, on the first bad row, in ``bad_rows='exceptions'`` mode and receives JSON Lines
    ``{"line", "reason_code", "reason", "raw"|"record"}``. Temporary files go to
    ``workdir`` (default: the system temp dir; ``/tmp`` on Lambda) and are removed.

    Raises :class:`RejectedFile` for a file that cannot be converted; nothing useful is
    left on ``sink`` then (the caller discards it).
    """
    from lakegov.convert.layout import split_file_name

    options = options or DatasetOptions()
    use_block_friendly_memory_pool()
    threads = threads or os.cpu_count() or 1
    workdir = workdir or tempfile.gettempdir()
    name_parts = split_file_name(source_name.rsplit("/", 1)[-1]) if source_name else None
    name_format = name_parts.format if name_parts else None
    name_compression = name_parts.compression if name_parts else None
    declared = options.declared_schema()

    stats = StreamStats()
    raw = LimitedReader(source, options.max_file_bytes, stats)
    head = raw.peek(4)
    compression = detect_compression(head)
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
    fmt = _detect_format(head, options, name_format)
    if fmt in ("csv", "json"):
        _refuse_binary(head, options.encoding, fmt, compression is not None)

    seed: pa.Schema | None = declared
    if seed is None and previous_schema is not None:
        seed = pa.schema([pa.field(f.name, f.type) for f in previous_schema])
    writer = SegmentedWriter(workdir, seed, row_group_rows, row_group_bytes)
    run = _Run(options, exceptions_sink)
    names = ColumnNames(options.normalize_column_names)
    delimiter: str | None = None

    def check_change(schema: pa.Schema) -> None:
        _check_schema_change(previous_schema, schema, options)

    writer.on_schema = check_change
    ok = False
    try:
        if fmt == "csv":
            delimiter = _convert_csv(
                stream, options, declared, names, writer, run, threads, block_bytes, name_parts
            )
        elif fmt == "json":
            _convert_json(stream, head, options, declared, names, writer, run, threads, block_bytes)
        elif fmt == "avro":
            _convert_records(avro_pieces(stream, 65536), declared, names, writer, run)
        elif fmt == "parquet":
            _convert_parquet(stream, declared, names, writer, run, workdir)
        else:
            raise RejectedFile("unsupported_format", f"format {fmt!r} is not supported")
        if run.rows_in == 0:
            raise RejectedFile("empty", "the file has no data rows")
        output_bytes = writer.finish(sink)
        if writer.rows_out == 0:
            raise RejectedFile(
                run.bad_rows[0].reason_code if run.bad_rows else "empty",
                f"none of the file's {run.rows_in} rows could be converted",
                [b.line for b in run.bad_rows[:REJECT_LINES]],
            )
        ok = True
    except pa.ArrowInvalid as exc:
        raise RejectedFile("malformed", f"the file cannot be read as {fmt}: {exc}") from exc
    finally:
        if ok:
            writer.cleanup()
        else:
            writer.abort()

    schema = writer.schema
    diff = compare_schemas(previous_schema, schema)
    seen = names.output_names()
    missing = (
        [f.name for f in previous_schema if f.name not in seen]
        if previous_schema is not None
        else []
    )
    return ConversionResult(
        rows_in=run.rows_in,
        rows_out=writer.rows_out,
        bad_row_count=run.bad_count,
        bad_rows=run.bad_rows,
        schema=schema,
        schema_fingerprint=schema_fingerprint(schema),
        schema_diff=diff,
        format=fmt,
        compression=compression,
        bytes_in=stats.bytes_in,
        bytes_decompressed=stats.bytes_decompressed,
        output_bytes=output_bytes,
        row_groups=writer.row_groups,
        exceptions_written=run.exceptions_written,
        delimiter=delimiter,
        encoding=options.encoding if fmt in ("csv", "json") else None,
        renamed_columns=names.renamed,
        missing_columns=missing,
    )


def _check_schema_change(
    previous: pa.Schema | None, current: pa.Schema, options: DatasetOptions
) -> None:
    if previous is None or options.schema_changes == "any":
        return
    diff = compare_schemas(previous, current)
    # columns of the previous schema absent from this file are written as nulls: not removals
    if diff.kind == "breaking" or (diff.kind == "additive" and options.schema_changes == "none"):
        raise RejectedFile(
            "schema_change",
            f"{diff.kind} change against the dataset's schema ({diff.describe()}); "
            f"the dataset allows {options.schema_changes} changes",
        )


def _convert_csv(
    stream: DecompressedReader,
    options: DatasetOptions,
    declared: pa.Schema | None,
    names: ColumnNames,
    writer: SegmentedWriter,
    run: _Run,
    threads: int,
    block_bytes: int,
    name_parts: Any,
) -> str:
    chunks = utf8_chunks(stream.chunks(), options.encoding)
    first = next(chunks, b"")
    sample_text = first[: 64 * 1024].decode("utf-8", errors="replace")
    delimiter = (
        options.delimiter
        or _name_delimiter(name_parts)
        or sniff_delimiter(sample_text, options.quotechar)
    )

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks

    blocks = csv_blocks(rest(), block_bytes, options.quotechar.encode())
    first_block = next(blocks, None)
    if first_block is None:
        raise RejectedFile("empty", "the file is empty")
    if options.header:
        fields, header_len = _read_header(first_block.data, delimiter, options.quotechar)
        if not fields:
            raise RejectedFile("empty", "the file has no header")
        body = first_block.data[header_len:]
        header_lines = first_block.data[:header_len].count(b"\n")
        first_block = Block(0, body, first_block.start_line + header_lines)
    else:
        sample = csv.reader(
            io.StringIO(sample_text.splitlines()[0] if sample_text else ""),
            delimiter=delimiter,
            quotechar=options.quotechar,
        )
        fields = [f"col_{i + 1}" for i in range(len(next(sample, [])))]
    header = names.header(fields)

    if declared is not None:
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

    def all_blocks() -> Iterator[Block]:
        if first_block.data.strip():
            yield first_block
        yield from blocks

    def work(block: Block) -> BlockResult:
        ctx = CsvContext(
            header,
            delimiter,
            options.quotechar,
            list(options.null_values),
            declared,
            writer.floors(),
        )
        return parse_csv_block(block, ctx)

    _pipeline(all_blocks(), work, threads, run, writer)
    return delimiter


def _name_delimiter(name_parts: Any) -> str | None:
    if name_parts is None:
        return None
    return {"tsv": "\t", "psv": "|"}.get(name_parts.extension or "")


def _convert_json(
    stream: DecompressedReader,
    head: bytes,
    options: DatasetOptions,
    declared: pa.Schema | None,
    names: ColumnNames,
    writer: SegmentedWriter,
    run: _Run,
    threads: int,
    block_bytes: int,
) -> None:
    chunks = utf8_chunks(stream.chunks(), options.encoding)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    documents = text.startswith(b"[")
    if not documents:
        first_line = text.split(b"\n", 1)[0]
        if b"\n" in text or len(text) < len(head):
            try:
                json.loads(first_line)
            except ValueError:
                documents = True  # a pretty-printed object, not JSON Lines
    ctx = JsonContext(names, declared, records=documents)
    blocks = (
        json_document_blocks(chunks, block_bytes) if documents else line_blocks(chunks, block_bytes)
    )
    _pipeline(blocks, lambda b: parse_json_block(b, ctx), threads, run, writer)


def _convert_records(
    tables: Iterator[tuple[pa.Table, int]],
    declared: pa.Schema | None,
    names: ColumnNames,
    writer: SegmentedWriter,
    run: _Run,
) -> None:
    for table, first in tables:
        renamed = table.rename_columns([names(n) for n in table.column_names])
        bad: list[tuple[int, str, str, Any]] = []
        if declared is not None:
            undeclared = [n for n in renamed.column_names if n not in declared.names]
            if undeclared:
                raise RejectedFile(
                    "schema_mismatch", f"column {undeclared[0]} is not in the declared schema"
                )
            columns = {n: renamed.column(n) for n in renamed.column_names}
            typed, row_bad = _apply_declared(columns, renamed.num_rows, declared)
            if row_bad:
                for i in sorted(row_bad):
                    code, reason = row_bad[i]
                    bad.append(
                        (first + i, code, reason, _jsonable(renamed.slice(i, 1).to_pylist()[0]))
                    )
                keep = np.ones(renamed.num_rows, dtype=bool)
                keep[list(row_bad)] = False
                typed = typed.filter(pa.array(keep))
            renamed = typed
        run.take(BlockResult(Piece(renamed), renamed.num_rows + len(bad), bad), writer)


def _convert_parquet(
    stream: DecompressedReader,
    declared: pa.Schema | None,
    names: ColumnNames,
    writer: SegmentedWriter,
    run: _Run,
    workdir: str,
) -> None:
    # Parquet keeps its index at the end: the file is spooled to local disk first.
    fd, path = tempfile.mkstemp(prefix="lakegov-in-", suffix=".parquet", dir=workdir)
    try:
        with os.fdopen(fd, "wb") as spool:
            for chunk in stream.chunks():
                spool.write(chunk)
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RejectedFile("malformed", f"not a readable Parquet file: {exc}") from exc

        def groups() -> Iterator[tuple[pa.Table, int]]:
            first = 1
            for i in range(pf.num_row_groups):
                try:
                    table = pf.read_row_group(i)
                except (pa.ArrowInvalid, OSError) as exc:
                    raise RejectedFile(
                        "malformed", f"Parquet row group {i} cannot be read: {exc}", [first]
                    ) from exc
                yield table, first
                first += table.num_rows

        _convert_records(groups(), declared, names, writer, run)
    finally:
        Path(path).unlink(missing_ok=True)


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
        with os.fdopen(fd, "wb") as sink, Path(src_path).open("rb") as source:
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
