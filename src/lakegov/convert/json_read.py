"""JSON Lines, JSON arrays and documents: a fast path on DuckDB's reader when its types are
safe, else a scan that types every value exactly (the rules are in
:mod:`lakegov.convert.engine`'s docstring)."""

from __future__ import annotations

import codecs
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from lakegov.convert.run import (
    HEAD_BYTES,
    SAMPLE_ROWS,
    BadLine,
    ColumnNames,
    Run,
    declared_copy,
    first_line,
)
from lakegov.convert.sql import (
    identifier,
    literal,
    typed_text,
)
from lakegov.convert.streams import (
    READ_CHUNK,
)
from lakegov.errors import RejectedFile
from lakegov.schema import (
    LIST_ITEM,
    ColumnPath,
    FloatText,
    duckdb_type,
    join_types,
    json_value_type,
)

# --------------------------------------------------------------------------- JSON


_UNSAFE_JSON = re.compile(r"JSON|MAP|UBIGINT|HUGEINT|STRUCT\(\)")
_NESTED_FLOAT = re.compile(r"(DOUBLE|FLOAT)(\[\]|[,)])")


def _json_fast_types(run: Run, spool: str, sample_rows: int) -> pa.Schema | None:
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
    run: Run,
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
    bad: list[BadLine]


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
                scan.bad.append(BadLine(line, "encoding", "the line is not valid UTF-8", raw_text))
                continue
            if error is not None:
                scan.bad.append(BadLine(line, "malformed", error, raw_text))
                continue
            if not isinstance(value, dict):
                scan.bad.append(
                    BadLine(
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


def convert_json(
    run: Run,
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
    run: Run,
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
            rows_out, bad = declared_copy(
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
            raise RejectedFile("malformed", f"the JSON cannot be read: {first_line(exc)}") from exc
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
        raise RejectedFile("malformed", f"the JSON cannot be read: {first_line(exc)}") from exc
    return rows_in, rows_out
