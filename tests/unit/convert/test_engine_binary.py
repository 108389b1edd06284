"""Parquet and Avro inputs."""

from __future__ import annotations

import datetime as dt
import decimal
import io
from collections.abc import Callable
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakegov.convert.options import ColumnSpec, DatasetOptions
from lakegov.errors import RejectedFile

Run = Callable[..., Any]


def parquet_bytes(table: pa.Table, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def test_parquet_is_validated_and_rewritten(run: Run) -> None:
    table = pa.table(
        {
            "id": pa.array(range(3000), pa.int64()),
            "Name": [f"n{i}" for i in range(3000)],
            "nested": [{"a": i, "b": [i, i + 1]} for i in range(3000)],
        }
    )
    out = run(parquet_bytes(table, row_group_size=1000), "x.parquet")
    assert out.result.format == "parquet"
    assert out.table.column_names == ["id", "name", "nested"]
    assert out.table.column("nested").to_pylist()[2] == {"a": 2, "b": [2, 3]}
    assert out.result.rows_out == 3000


def test_parquet_without_extension_is_detected_by_magic(run: Run) -> None:
    out = run(parquet_bytes(pa.table({"a": [1, 2]})), "x.dat")
    assert out.result.format == "parquet"


@pytest.mark.parametrize("damage", ["truncated", "pages"])
def test_corrupt_parquet_is_malformed(run: Run, damage: str) -> None:
    data = parquet_bytes(pa.table({"a": [f"value {i}" for i in range(1000)]}))
    broken = (
        data[: len(data) // 2] if damage == "truncated" else data[:4] + b"\xff" * 200 + data[204:]
    )
    with pytest.raises(RejectedFile) as err:
        run(broken, "x.parquet")
    assert err.value.reason_code == "malformed"


def test_parquet_declared_schema_cast(run: Run) -> None:
    options = DatasetOptions(columns=(ColumnSpec("a", "double"),))
    out = run(parquet_bytes(pa.table({"a": [1, 2]})), "x.parquet", options=options)
    assert out.table.schema.field("a").type == pa.float64()


AVRO_SCHEMA = {
    "type": "record",
    "name": "Customer",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": ["null", "string"]},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [{"name": "city", "type": "string"}],
            },
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "born", "type": {"type": "int", "logicalType": "date"}},
        {"name": "seen", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {
            "name": "balance",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
        },
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
    ],
}


def avro_bytes(records: list[dict[str, Any]], codec: str = "null") -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, fastavro.parse_schema(AVRO_SCHEMA), records, codec=codec)
    return buf.getvalue()


@pytest.mark.parametrize("codec", ["null", "deflate"])
def test_avro(run: Run, codec: str) -> None:
    records = [
        {
            "id": i,
            "name": None if i % 2 else f"n{i}",
            "address": {"city": "Paris"},
            "tags": ["x"] * (i % 3),
            "born": dt.date(2000, 1, 1),
            "seen": dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC),
            "balance": decimal.Decimal("12.34"),
            "kind": "B",
        }
        for i in range(100)
    ]
    out = run(avro_bytes(records, codec), "customers.avro")
    assert out.result.format == "avro"
    schema = out.table.schema
    assert schema.field("id").type == pa.int64()
    assert schema.field("born").type == pa.date32()
    assert schema.field("balance").type == pa.decimal128(10, 2)
    assert pa.types.is_struct(schema.field("address").type)
    row = out.table.slice(1, 1).to_pylist()[0]
    assert row["name"] is None and row["tags"] == ["x"] and row["kind"] == "B"
    assert row["seen"] == dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def test_corrupt_avro_is_malformed(run: Run) -> None:
    data = avro_bytes(
        [
            {
                "id": 1,
                "name": "a",
                "address": {"city": "x"},
                "tags": [],
                "born": dt.date(2000, 1, 1),
                "seen": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "balance": decimal.Decimal("1.00"),
                "kind": "A",
            }
        ]
        * 50
    )
    with pytest.raises(RejectedFile) as err:
        run(data[: len(data) - 30], "x.avro")
    assert err.value.reason_code == "malformed"
