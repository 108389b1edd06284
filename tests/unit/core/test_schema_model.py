"""The schema model: engine types, their stored and Glue names, schema differences (no AWS)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakegov.schema import (
    Column,
    columns_from_arrow,
    diff_columns,
    glue_type,
    merge_types,
    parse_type,
    parse_type_name,
    schema_columns,
    schema_from_columns,
)


@pytest.mark.parametrize(
    ("arrow", "glue"),
    [
        (pa.bool_(), "boolean"),
        (pa.int8(), "tinyint"),
        (pa.int16(), "smallint"),
        (pa.int32(), "int"),
        (pa.int64(), "bigint"),
        (pa.uint32(), "bigint"),
        (pa.float32(), "float"),
        (pa.float64(), "double"),
        (pa.string(), "string"),
        (pa.large_string(), "string"),
        (pa.binary(), "binary"),
        (pa.date32(), "date"),
        (pa.timestamp("ms", tz="UTC"), "timestamp"),
        (pa.decimal128(12, 2), "decimal(12,2)"),
        (pa.decimal256(50, 4), "decimal(38,4)"),
        (pa.dictionary(pa.int32(), pa.string()), "string"),
        (pa.list_(pa.int64()), "array<bigint>"),
        (pa.large_list(pa.string()), "array<string>"),
        (pa.map_(pa.string(), pa.float64()), "map<string,double>"),
        (
            pa.struct([("a", pa.int32()), ("b", pa.list_(pa.struct([("c", pa.string())])))]),
            "struct<a:int,b:array<struct<c:string>>>",
        ),
        (pa.null(), "string"),
    ],
)
def test_arrow_types_map_to_the_hive_types_athena_reads(arrow, glue):
    assert glue_type(arrow) == glue


def test_a_null_column_is_marked_untyped():
    schema = pa.schema([("id", pa.int64()), ("later", pa.null())])
    assert columns_from_arrow(schema) == [
        Column("id", "bigint"),
        Column("later", "string", untyped=True),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "bigint",
        "decimal(10,2)",
        "array<struct<a:int,b:map<string,array<bigint>>>>",
        "struct<x:decimal(5,1),y:string>",
    ],
)
def test_glue_type_strings_round_trip_through_the_parser(text):
    assert str(parse_type(text)) == text


def test_a_malformed_type_string_is_refused():
    with pytest.raises(ValueError):
        parse_type("struct<a:int")


@pytest.mark.parametrize(
    ("old", "new", "merged", "verdict"),
    [
        ("int", "bigint", "bigint", "additive"),
        ("bigint", "int", "bigint", "same"),
        ("float", "double", "double", "additive"),
        ("bigint", "string", "string", "breaking"),
        ("struct<a:int>", "struct<a:int,b:string>", "struct<a:int,b:string>", "additive"),
        ("struct<a:int,b:string>", "struct<a:int>", "struct<a:int>", "breaking"),
        ("array<struct<a:int>>", "array<struct<a:bigint>>", "array<struct<a:bigint>>", "additive"),
        ("array<int>", "int", "int", "breaking"),
        ("map<string,int>", "map<string,bigint>", "map<string,bigint>", "additive"),
    ],
)
def test_type_changes_are_classified(old, new, merged, verdict):
    result, got = merge_types(parse_type(old), parse_type(new))
    assert (str(result), got) == (merged, verdict)


def test_the_diff_keeps_removed_columns_and_appends_new_ones():
    table = [Column("id", "bigint"), Column("name", "string"), Column("n", "int")]
    file = [Column("ID", "bigint"), Column("n", "bigint"), Column("email", "string")]
    diff = diff_columns(table, file)
    assert diff.kind == "breaking"  # name is gone
    assert [c.name for c in diff.removed] == ["name"]
    assert [c.name for c in diff.added] == ["email"]
    assert [(c.name, c.previous, c.current) for c in diff.widened] == [("n", "int", "bigint")]
    assert [(c.name, c.type) for c in diff.merged] == [
        ("id", "bigint"),
        ("name", "string"),
        ("n", "bigint"),
        ("email", "string"),
    ]


def test_nulls_fit_any_column_and_an_untyped_column_takes_the_first_type():
    table = [Column("a", "bigint"), Column("b", "string", untyped=True)]
    file = [Column("a", "string", untyped=True), Column("b", "date")]
    diff = diff_columns(table, file)
    assert diff.kind == "additive"
    assert diff.merged == [Column("a", "bigint"), Column("b", "date")]


def test_a_table_type_the_parser_does_not_know_is_compared_as_text():
    table = [Column("a", "uniontype<int,string>"), Column("b", "uniontype<int")]
    assert diff_columns(table, [Column("a", "uniontype<int,string>"), table[1]]).kind == "none"
    assert diff_columns(table, [Column("a", "string"), table[1]]).kind == "breaking"


@pytest.mark.parametrize(
    "t",
    [
        pa.int64(),
        pa.int32(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.null(),
        pa.binary(),
        pa.date32(),
        pa.timestamp("us"),
        pa.timestamp("us", tz="UTC"),
        pa.timestamp("ms", tz="+02:00"),
        pa.decimal128(38, 0),
        pa.decimal128(10, 2),
        pa.list_(pa.int64()),
        pa.struct([("a", pa.int64()), ("b", pa.list_(pa.struct([("c", pa.date32())])))]),
        pa.map_(pa.string(), pa.float64()),
    ],
)
def test_stored_schema_types_round_trip(t: pa.DataType) -> None:
    # Given a dataset schema stored as the converter stores it / When read back
    stored = schema_columns(pa.schema([("c", t)]))
    # Then it is the same engine type (the previous parser returned nothing for
    # timestamp[us], date32[day], decimals and nested types, and the check never ran)
    assert parse_type_name(stored[0]["type"]) == t
    assert schema_from_columns(stored) == pa.schema([("c", t)])


def test_stored_schema_reads_declared_names_and_refuses_nonsense() -> None:
    assert parse_type_name("decimal(10,2)") == pa.decimal128(10, 2)
    assert parse_type_name("bigint") == pa.int64()
    with pytest.raises(ValueError):
        parse_type_name("list<nonsense>")
