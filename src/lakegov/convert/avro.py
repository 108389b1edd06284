"""Avro records as Arrow tables, typed by the file's writer schema.

DuckDB's Avro reader ignores logical types (dates, timestamps, decimals), so the engine
reads Avro with fastavro and hands DuckDB the Arrow batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from lakegov.errors import RejectedFile


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


def avro_batches(path: str, batch_rows: int) -> Iterator[pa.Table]:
    """The records of an Avro file as Arrow tables, typed by the file's writer schema
    (DuckDB's own Avro reader ignores logical types: dates, timestamps, decimals)."""
    import fastavro  # imported here: only Avro files need it

    with open(path, "rb") as stream:
        try:
            reader = fastavro.reader(stream)
            schema = reader.writer_schema
        except Exception as exc:  # fastavro raises many types for a bad header
            raise RejectedFile("malformed", f"not a readable Avro file: {exc}") from exc
        arrow: pa.Schema | None
        try:
            top, _ = _avro_type(schema, {})
            arrow = pa.schema(list(top)) if pa.types.is_struct(top) else None
        except (ValueError, KeyError, TypeError):
            arrow = None  # unsupported shapes: let Arrow infer from the values
        batch: list[Any] = []
        count = 0
        try:
            for rec in reader:
                batch.append(rec)
                count += 1
                if len(batch) >= batch_rows:
                    yield _avro_table(batch, arrow)
                    batch = []
        except RejectedFile:
            raise
        except Exception as exc:
            raise RejectedFile(
                "malformed", f"Avro record {count + 1} cannot be read: {exc}", [count + 1]
            ) from exc
    if batch:
        yield _avro_table(batch, arrow)


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
