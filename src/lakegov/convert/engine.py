"""The converter: one landed file in, one Parquet file out, on DuckDB.

This module is the driver (format detection, spooling, the choice of reader, the result);
the readers are :mod:`.csv_read` (delimited text) and :mod:`.json_read`, and what every
conversion shares (its run and DuckDB connection, bad rows, column names, the typed copy
that checks declared types) is :mod:`.run`. The rules below hold for all of them.

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

import codecs
import contextlib
import dataclasses
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lakegov.convert.avro import avro_batches
from lakegov.convert.csv_read import (
    check_declared,
    convert_csv,
    csv_inferred,
    declared_copy,
    first_line,
)
from lakegov.convert.databases import DuckDBPool
from lakegov.convert.dialect import CsvDialect
from lakegov.convert.json_read import convert_json
from lakegov.convert.options import DatasetOptions
from lakegov.convert.run import (
    AVRO_MAGIC,
    DEFAULT_MEMORY_LIMIT,
    PARQUET_MAGIC,
    ROW_GROUP_ROWS,
    TRANSCODED_FORMATS,
    BadLine,
    BadRow,
    ColumnNames,
    ConversionResult,
    Run,
    read_head,
    spool_chunks,
)
from lakegov.convert.sql import (
    identifier,
    literal,
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
from lakegov.layout import DELIMITER_BY_EXTENSION, split_file_name
from lakegov.schema import (
    change_allowed,
    compare_schemas,
    duckdb_type,
    join_types,
    schema_fingerprint,
)

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


# --------------------------------------------------------------------------- Parquet, Avro


def _convert_binary(
    run: Run,
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
        raise RejectedFile("malformed", f"not a readable {fmt} file: {first_line(exc)}") from exc
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
        raise RejectedFile("schema_mismatch", first_line(exc)) from exc
    except duckdb.Error as exc:
        raise RejectedFile(
            "malformed", f"the {fmt} file cannot be read: {first_line(exc)}"
        ) from exc
    return rows, rows


# --------------------------------------------------------------------------- text tables


def _convert_text_columns(
    run: Run,
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
        check_declared(header, declared)
        text = {name: f"c{i}" for i, name in enumerate(header)}
        rows_out, bad = declared_copy(
            run, table.reader, declared, text, out, row_group_rows, table.lines_of, lambda r: r
        )
    else:
        flat = {n: t for n, t in floors.items() if n not in nested}
        rows_out = csv_inferred(run, table.reader, out, header, flat, row_group_rows)
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
    bad += [BadLine(u.line, u.code, u.reason, u.raw) for u in table.unread]
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
    run = Run(options, exceptions_sink, workdir, threads, memory_limit, databases)
    failure: BaseException | None = None
    try:
        text = fmt in TRANSCODED_FORMATS
        spool = _readable_as_is(
            source, compression, options.encoding, head, stats, options.max_file_bytes
        )
        if spool is None:
            spool = os.path.join(workdir, "input")
            chunks = stream.chunks()
            spool_chunks(utf8_chunks(chunks, options.encoding) if text else chunks, spool)
        if text and not read_head(spool).strip(b" \t\r\n\xef\xbb\xbf"):
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
            rows_in, rows_out, dialect = convert_csv(
                run, spool, out, names, declared, floors, row_group_rows
            )
            delimiter = dialect.delimiter
        elif fmt == "json":
            rows_in, rows_out, names = convert_json(
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
