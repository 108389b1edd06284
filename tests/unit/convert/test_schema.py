"""The widening lattice, fingerprints, schema diffs and the dataset's previous schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile
from lakegov.schema import (
    compare_schemas,
    join_types,
    schema_fingerprint,
    texts_type,
    widen_for_text,
)

Run = Callable[..., Any]


@pytest.mark.parametrize(
    ("a", "b", "joined"),
    [
        (pa.null(), pa.int64(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.bool_(), pa.int64(), pa.string()),
        (pa.date32(), pa.timestamp("us"), pa.timestamp("us")),
        (pa.timestamp("us"), pa.timestamp("us", tz="UTC"), pa.string()),
        (pa.list_(pa.int64()), pa.list_(pa.float64()), pa.list_(pa.float64())),
        (
            pa.struct([("a", pa.int64())]),
            pa.struct([("b", pa.string())]),
            pa.struct([("a", pa.int64()), ("b", pa.string())]),
        ),
        (pa.struct([("a", pa.int64())]), pa.int64(), pa.string()),
    ],
)
def test_join_types(a: pa.DataType, b: pa.DataType, joined: pa.DataType) -> None:
    assert join_types(a, b) == joined
    assert join_types(b, a).equals(joined) or pa.types.is_struct(joined)


def test_fingerprint_ignores_column_and_field_order_but_not_types() -> None:
    a = pa.schema([("x", pa.int64()), ("s", pa.struct([("p", pa.int64()), ("q", pa.string())]))])
    b = pa.schema([("s", pa.struct([("q", pa.string()), ("p", pa.int64())])), ("x", pa.int64())])
    c = pa.schema([("x", pa.float64()), ("s", pa.struct([("p", pa.int64()), ("q", pa.string())]))])
    assert schema_fingerprint(a) == schema_fingerprint(b)
    assert schema_fingerprint(a) != schema_fingerprint(c)
    assert schema_fingerprint(a).startswith("sha256:")


def test_compare_schemas() -> None:
    prev = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("x", pa.null()),
            ("s", pa.struct([("a", pa.int64())])),
        ]
    )
    assert compare_schemas(None, prev).kind == "none"
    assert compare_schemas(prev, prev).kind == "none"
    added = prev.append(pa.field("new", pa.string()))
    diff = compare_schemas(prev, added)
    assert (diff.kind, [c.name for c in diff.added]) == ("additive", ["new"])
    filled = pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("x", pa.string()),
            ("s", pa.struct([("a", pa.int64()), ("b", pa.int64())])),
        ]
    )
    assert compare_schemas(prev, filled).kind == "additive"
    retyped = pa.schema(
        [
            ("id", pa.float64()),
            ("name", pa.string()),
            ("x", pa.null()),
            ("s", pa.struct([("a", pa.int64())])),
        ]
    )
    diff = compare_schemas(prev, retyped)
    assert diff.kind == "breaking"
    assert diff.broken[0].name == "id" and diff.broken[0].current == "double"
    removed = pa.schema([("id", pa.int64())])
    diff = compare_schemas(prev, removed)
    assert diff.kind == "breaking" and {c.name for c in diff.removed} == {"name", "x", "s"}
    # one rule with the catalog: a wider integer is additive, a narrower one no change
    narrow = pa.schema([("n", pa.int32())])
    wide = pa.schema([("n", pa.int64())])
    assert compare_schemas(narrow, wide).kind == "additive"
    assert compare_schemas(wide, narrow).kind == "none"


PREVIOUS = pa.schema(
    [("id", pa.int64()), ("amount", pa.float64()), ("note", pa.string()), ("gone", pa.string())]
)


def test_previous_schema_seeds_inference_and_fills_absent_columns(run: Run) -> None:
    # Given a dataset whose amount was float64 and note text / When a file has only ints
    out = run(b"id,amount,note\n1,5,7\n2,6,8\n", previous_schema=PREVIOUS)
    # Then the types stay the dataset's, and the absent column is written as nulls
    assert out.table.schema.field("amount").type == pa.float64()
    assert out.table.column("note").to_pylist() == ["7", "8"]
    assert out.table.column("gone").to_pylist() == [None, None]
    assert out.result.schema_diff.kind == "none"
    assert out.result.missing_columns == ["gone"]


def test_additive_change_passes_and_is_reported(run: Run) -> None:
    out = run(b"id,amount,note,extra\n1,5,a,b\n", previous_schema=PREVIOUS)
    assert out.result.schema_diff.kind == "additive"
    assert [c.name for c in out.result.schema_diff.added] == ["extra"]


def test_breaking_change_is_rejected_by_default_and_allowed_by_policy(run: Run) -> None:
    data = b"id,amount,note\nabc,5,a\n"
    with pytest.raises(RejectedFile) as err:
        run(data, previous_schema=PREVIOUS)
    assert err.value.reason_code == "schema_change"
    assert "id bigint -> string" in err.value.reason  # Glue's type names, as the catalog
    out = run(data, previous_schema=PREVIOUS, options=DatasetOptions(schema_changes="any"))
    assert out.result.schema_diff.kind == "breaking"


def test_policy_none_rejects_even_additive_changes(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(
            b"id,extra\n1,x\n",
            previous_schema=PREVIOUS,
            options=DatasetOptions(schema_changes="none"),
        )
    assert err.value.reason_code == "schema_change"


TEXTS = [
    "0",
    "7",
    "-5",
    "007",
    "+5",
    "1.5",
    "-7.5",
    "0.5",
    ".5",
    "1e3",
    "05.5",
    "00",
    "9007199254740992",
    "9007199254740993",
    "123456789012345",
    "1234567890123456",
    "9223372036854775808",
    "1" * 39,
    "true",
    "False",
    "yes",
    "",
    " ",
    "x",
    "1\n2",
    "2026-11-01",
    "2026-02-30",
    "2026-11-01 10:00",
    "2026-11-01T10:00:00.5",
    "2026-13-01 10:00",
    "2026-11-01 10:00:00Z",
    "2026-11-01 10:00:00+02:00",
    "٣",
]


@given(st.lists(st.one_of(st.sampled_from(TEXTS), st.integers().map(str)), max_size=30))
@settings(max_examples=300, deadline=None)
def test_texts_type_is_the_lattice_fold_of_its_texts(texts: list[str]) -> None:
    # The column type of a sample, found at once for columns of one shape, is what widening
    # value by value from null gives, for every mix of the lattice's edge texts
    expected, wide = pa.null(), False
    for text in texts:
        expected, wide = widen_for_text(expected, wide, text)
    assert texts_type(texts) == expected


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        (["1", "-2", "30"], pa.int64()),
        (["1", "2.5", "+3"], pa.float64()),
        (["1", "007"], pa.string()),
        (["1.5", "9007199254740993"], pa.string()),
        (["true", "False"], pa.bool_()),
        (["2026-11-01", "2026-02-28"], pa.date32()),
        (["2026-11-01", "2026-02-30"], pa.string()),
        (["2026-11-01 10:00", "2026-11-02T10:00:00"], pa.timestamp("us")),
        (["1", "2\n3"], pa.string()),
    ],
)
def test_texts_type_of_one_shaped_columns(texts: list[str], expected: pa.DataType) -> None:
    assert texts_type(texts) == expected
