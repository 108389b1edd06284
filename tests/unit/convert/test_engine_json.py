"""JSON Lines, JSON arrays and nested JSON through the engine."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from lakegov.convert.options import ColumnSpec, DatasetOptions
from lakegov.errors import RejectedFile

Run = Callable[..., Any]


def jsonl(records: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_json_lines_named_json_are_sniffed(run: Run) -> None:
    out = run(jsonl([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]), "customers.json")
    assert out.result.format == "json"
    assert out.table.to_pylist() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_json_array(run: Run) -> None:
    data = json.dumps([{"id": i, "v": f"x{i}"} for i in range(1000)], indent=2).encode()
    out = run(data, "items.json")
    assert out.table.num_rows == 1000
    assert out.table.column("v").to_pylist()[-1] == "x999"


def test_pretty_printed_objects_one_after_another(run: Run) -> None:
    data = (
        json.dumps({"a": 1, "b": {"c": 2}}, indent=2)
        + "\n"
        + json.dumps({"a": 3, "b": {"c": 4}}, indent=2)
    ).encode()
    out = run(data, "x.json")
    assert out.table.to_pylist() == [{"a": 1, "b": {"c": 2}}, {"a": 3, "b": {"c": 4}}]


def test_nested_structs_and_lists_are_kept(run: Run) -> None:
    records = [
        {
            "id": 1,
            "customer": {"name": "Ann", "address": {"city": "Paris"}},
            "tags": ["a", "b"],
            "cards": [{"n": 1}],
        },
        {
            "id": 2,
            "customer": {"name": "Bob", "address": {"city": "Rome", "zip": "00100"}},
            "tags": [],
            "cards": [],
        },
    ]
    out = run(jsonl(records), "x.jsonl")
    schema = out.table.schema
    assert pa.types.is_struct(schema.field("customer").type)
    assert pa.types.is_list(schema.field("tags").type)
    assert out.table.column("customer").to_pylist()[1] == {
        "name": "Bob",
        "address": {"city": "Rome", "zip": "00100"},
    }
    assert out.table.column("customer").to_pylist()[0]["address"] == {"city": "Paris", "zip": None}
    assert out.table.column("cards").to_pylist() == [[{"n": 1}], []]


@pytest.mark.parametrize("row_group_rows", [1 << 20, 8_000])
def test_fifty_thousand_nulls_then_strings(run: Run, row_group_rows: int) -> None:
    records: list[dict[str, Any]] = [{"id": i, "late": None} for i in range(50_000)]
    records += [{"id": 50_000, "late": "now"}, {"id": 50_001, "late": {"nested": True}}]
    out = run(jsonl(records), "x.json", row_group_rows=row_group_rows)
    assert out.table.schema.field("late").type == pa.string()
    late = out.table.column("late").to_pylist()
    assert late[:50_000] == [None] * 50_000
    assert late[50_000] == "now"
    assert json.loads(late[50_001]) == {"nested": True}  # a struct among strings: kept as JSON text


@pytest.mark.parametrize("row_group_rows", [1 << 20, 5_000])
def test_ints_then_floats_and_late_struct_fields(run: Run, row_group_rows: int) -> None:
    records: list[dict[str, Any]] = [{"n": i, "s": {"a": i}} for i in range(20_000)]
    records.append({"n": 0.25, "s": {"a": 1, "b": "new"}})
    out = run(jsonl(records), "x.json", row_group_rows=row_group_rows)
    assert out.table.schema.field("n").type == pa.float64()
    assert out.table.column("n").to_pylist()[-2:] == [19_999.0, 0.25]
    s = out.table.column("s").to_pylist()
    assert s[0] == {"a": 0, "b": None} and s[-1] == {"a": 1, "b": "new"}


def test_mixed_types_within_one_block(run: Run) -> None:
    out = run(jsonl([{"v": 1}, {"v": "two"}, {"v": 3.5}, {"v": True}]), "x.json")
    assert out.table.column("v").to_pylist() == ["1", "two", "3.5", "true"]


MALFORMED = b'{"a": 1}\n{"a": 2\n\n{"a": 3}\n[1, 2]\n{"a": 4}\n'


def test_malformed_lines_reject_the_file_with_line_numbers(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(MALFORMED, "x.json")
    assert err.value.reason_code == "malformed"
    assert err.value.bad_lines == [2, 5]


def test_malformed_lines_go_to_exceptions(run: Run) -> None:
    out = run(
        MALFORMED,
        "x.json",
        options=DatasetOptions(bad_rows="exceptions", max_bad_row_fraction=1.0),
    )
    assert out.table.column("a").to_pylist() == [1, 3, 4]
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [
        (2, "malformed"),
        (5, "malformed"),
    ]
    assert out.exceptions[0]["raw"] == '{"a": 2'


def test_broken_json_array_is_malformed(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b'[{"a": 1}, {"a": 2', "x.json")
    assert err.value.reason_code == "malformed"


@pytest.mark.parametrize("data", [b"[]", b"  \n", b"[\n]\n"])
def test_empty_json(run: Run, data: bytes) -> None:
    with pytest.raises(RejectedFile) as err:
        run(data, "x.json")
    assert err.value.reason_code == "empty"


def test_gzipped_json_lines(run: Run) -> None:
    out = run(gzip.compress(jsonl([{"a": i} for i in range(100)])), "x.jsonl.gz")
    assert out.result.compression == "gzip"
    assert out.table.column("a").to_pylist() == list(range(100))


def test_declared_schema_on_json(run: Run) -> None:
    options = DatasetOptions(
        columns=(ColumnSpec("id", "int"), ColumnSpec("name", "string")),
        bad_rows="exceptions",
        max_bad_row_fraction=1.0,
    )
    out = run(
        jsonl([{"id": 1, "name": "a"}, {"id": "x", "name": "b"}, {"id": 3}]),
        "x.json",
        options=options,
    )
    assert out.table.schema.field("id").type == pa.int32()
    assert out.table.to_pylist() == [{"id": 1, "name": "a"}, {"id": 3, "name": None}]
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [(2, "schema_mismatch")]
