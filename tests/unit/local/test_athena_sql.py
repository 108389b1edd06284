"""The local Athena's pure parts: naming, result text, catalog views, refusals."""

import datetime
import decimal

import pytest
import sqlglot

from lakegov.local.athena.catalog import (
    CatalogError,
    Column,
    DataFile,
    TableDef,
    duckdb_type,
    table_format,
    view_sql,
)
from lakegov.local.athena.engine import (
    AthenaFailure,
    LocalAthenaEngine,
    QueryResult,
    _balanced,
    _like_pattern,
    _name_columns,
    athena_text,
    athena_type,
    format_csv,
)


def test_unnamed_result_columns_are_named_as_athena_names_them():
    tree = sqlglot.parse_one("SELECT a, count(*), b AS c, 1 + 1 FROM t", read="athena")
    _name_columns(tree)
    assert [e.alias_or_name for e in tree.expressions] == ["a", "_col1", "c", "_col3"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (datetime.datetime(2026, 11, 20, 8, 0, 0, 123456), "2026-11-20 08:00:00.123"),
        (datetime.date(2026, 11, 20), "2026-11-20"),
        (2.5, "2.5"),
        (decimal.Decimal("1.50"), "1.50"),
        ([1, None], "[1, null]"),
        ({"a": 1, "b": "x"}, "{a=1, b=x}"),
    ],
)
def test_values_are_shown_as_athena_shows_them(value, text):
    assert athena_text(value) == text


def test_duckdb_result_types_have_athena_names():
    assert athena_type("BIGINT") == ("bigint", 19, 0)
    assert athena_type("DECIMAL(10,2)") == ("decimal", 10, 2)
    assert athena_type("VARCHAR[]")[0] == "array"
    assert athena_type("STRUCT(a INTEGER)")[0] == "row"


def test_glue_types_are_read_as_duckdb_types():
    assert duckdb_type("array<struct<a:int,b:string>>") == 'STRUCT("a" INTEGER, "b" VARCHAR)[]'
    assert duckdb_type("map<string,bigint>") == "MAP(VARCHAR, BIGINT)"
    assert duckdb_type("decimal(10,2)") == "DECIMAL(10,2)"
    with pytest.raises(CatalogError):
        duckdb_type("uniontype<int,string>")


def test_glue_type_text_cannot_inject_sql_into_a_view():
    """A struct field name comes from the data (a JSON key): it is quoted, never spliced;
    a decimal's arguments are digits or the type is refused."""
    import duckdb

    name = "a\"varchar)),(select/**/content/**/from/**/read_text('/etc/hostname'))as\"b"
    rendered = duckdb_type(f"struct<{name}:string>")
    db = duckdb.connect()
    cast = db.execute(f"SELECT CAST(NULL AS {rendered}) AS s").description
    assert len(cast) == 1  # one column: the text stayed a field name
    assert db.execute(
        f"SELECT CAST({{'{name.replace(chr(39), chr(39) * 2)}': 'x'}} AS {rendered})"
    ).fetchone() == ({name: "x"},)
    for bad in ("decimal(10,2)||1", "decimal(1;select)", "decimal(x)"):
        with pytest.raises(CatalogError):
            duckdb_type(bad)


def test_an_unknown_serde_is_refused_by_name():
    with pytest.raises(CatalogError, match="avro"):
        table_format(
            {"SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.avro.AvroSerDe"}}
        )


def test_a_view_casts_columns_adds_partition_values_and_applies_the_row_filter():
    table = TableDef(
        "db",
        "t",
        [Column("id", "bigint"), Column("name", "string")],
        [Column("dt", "string")],
        "s3://b/t/",
        "parquet",
    )
    files = [DataFile("s3://b/t/dt=1/a.parquet", 10, (("dt", "1"),))]
    sql = view_sql(
        table,
        files,
        columns=[Column("id", "bigint"), Column("dt", "string")],
        present={"id", "name"},
        row_filter="name = 'x'",
        with_path=False,
    )
    assert 'CAST("id" AS BIGINT) AS "id"' in sql
    assert "TRY_CAST('1' AS VARCHAR) AS \"dt\"" in sql
    assert sql.startswith('SELECT "id", "dt" FROM (') and sql.endswith("WHERE name = 'x'")


def test_shell_patterns_and_unload_parentheses():
    pattern = _like_pattern("SHOW TABLES 'shop_c*|orders'")
    assert pattern is not None
    assert pattern.match("shop_customers") and pattern.match("orders")
    assert not pattern.match("shop_orders")
    assert _balanced("(SELECT ')' AS x) TO 's3://b/'") == ("SELECT ')' AS x", " TO 's3://b/'")


def test_results_csv_quotes_every_value_and_leaves_nulls_empty():
    result = QueryResult(
        "DML", [("a", "INTEGER"), ("b", "VARCHAR")], [(1, 'say "hi"'), (None, None)]
    )
    assert format_csv(result) == b'"a","b"\n"1","say ""hi"""\n,\n'


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/hostname')",
        "SELECT (SELECT count(*) FROM read_parquet('s3://raw/any/*.parquet'))",
        "SELECT * FROM duckdb_secrets()",
        "WITH f AS (SELECT 1 AS x) SELECT * FROM f CROSS JOIN read_csv('s3://raw/x.csv')",
    ],
)
def test_duckdb_table_functions_cannot_read_around_lake_formation(sql):
    """Athena has no read_parquet / read_text: DuckDB's would read any S3 object or local
    file with the engine's credentials, whatever Lake Formation grants the caller."""
    engine = LocalAthenaEngine(
        glue=None,
        s3=None,
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        credentials=("k", "s"),
    )
    try:
        with pytest.raises(AthenaFailure) as failure:
            engine.execute(
                sql, database=None, principal="arn:aws:iam::123456789012:role/x", query_id="q"
            )
    finally:
        engine.close()
    assert failure.value.error_type == "FUNCTION_NOT_FOUND"


@pytest.mark.parametrize(
    "sql", ["INSERT INTO t VALUES (1)", "CREATE VIEW v AS SELECT 1", "MERGE INTO t USING s"]
)
def test_statements_it_does_not_run_fail_as_not_supported(sql):
    engine = LocalAthenaEngine(
        glue=None, s3=None, endpoint_url="http://x", region="r", credentials=("a", "b")
    )
    with pytest.raises(AthenaFailure) as failed:
        engine.execute(sql, database=None, principal="p", query_id="q")
    assert failed.value.error_type == "NOT_SUPPORTED"


def test_leading_comments_do_not_hide_the_statement():
    engine = LocalAthenaEngine(
        glue=None, s3=None, endpoint_url="http://x", region="r", credentials=("a", "b")
    )
    with pytest.raises(AthenaFailure) as failed:
        engine.execute(
            "-- a note\n/* another */ INSERT INTO t VALUES (1)",
            database=None,
            principal="p",
            query_id="q",
        )
    assert "'INSERT INTO T'" in str(failed.value)


def test_show_tables_lists_only_the_tables_the_principal_holds_permissions_on():
    """Lake Formation's catalog shows a principal only the tables it has permissions on;
    names of the others are not disclosed."""
    from lakegov.governance.access import AccessDenied
    from lakegov.governance.table_grant import TableGrant

    class _Glue:
        class exceptions:
            EntityNotFoundException = LookupError

        def get_paginator(self, name):
            assert name == "get_tables"
            return self

        def paginate(self, DatabaseName):
            return [{"TableList": [{"Name": "cards"}, {"Name": "customers"}, {"Name": "salaries"}]}]

    class _Policy:
        def table_access(self, principal, database, table, permission="SELECT"):
            assert permission == "DESCRIBE"
            if table == "salaries":
                raise AccessDenied(principal, permission, f"{database}.{table}")
            return TableGrant(None, None)

    analyst = "arn:aws:iam::123456789012:role/analyst"
    engine = LocalAthenaEngine(
        glue=_Glue(),
        s3=None,
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        credentials=("k", "s"),
        access=lambda: _Policy(),
        unrestricted=lambda principal: principal != analyst,
    )
    shown = engine.execute("SHOW TABLES IN shop", database=None, principal=analyst, query_id="q")
    assert shown.rows == [("cards",), ("customers",)]
    admin = engine.execute("SHOW TABLES IN shop", database=None, principal="admin", query_id="q")
    assert len(admin.rows) == 3


def test_a_bare_decimal_is_athenas_decimal_10_0_not_duckdbs_18_3():
    # Athena reads a column typed `decimal` as DECIMAL(10,0); DuckDB's bare DECIMAL is (18,3)
    assert duckdb_type("decimal") == "DECIMAL(10,0)"
    assert duckdb_type("decimal(12)") == "DECIMAL(12,0)"
    assert duckdb_type("struct<a:decimal>") == 'STRUCT("a" DECIMAL(10,0))'
