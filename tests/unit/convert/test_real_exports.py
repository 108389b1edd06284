"""Real exports load (issue 18): no row lost without a trace, bad rows set aside by default,
the dialects people produce. Each test feeds the converter a file the way a landing zone
would, and reads back the Parquet file and the exceptions output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakegov.convert.engine import convert_file
from lakegov.convert.options import ColumnSpec, DatasetOptions, options_from_document
from lakegov.errors import RejectedFile

Run = Callable[..., Any]


def rows(n: int, start: int = 1) -> list[str]:
    return [f"{i},name {i},{i}.5" for i in range(start, start + n)]


def document(**fields: Any) -> DatasetOptions:
    _, options = options_from_document({"match": {"prefix": "landing/"}, **fields})
    return options


# --------------------------------------------------------------------------- header


def test_a_file_without_header_keeps_all_its_rows_with_generated_names(run: Run) -> None:
    # Given the export: no header row, dd.mm.yyyy dates, times, ids
    data = (
        b"28.01.2018,00:00,MG-8769,12.5\n"
        b"28.01.2018,00:15,MG-8770,13.1\n"
        b"28.01.2018,00:30,MG-8771,12.9\n"
    )
    # When it is converted with zero configuration
    out = run(data)
    # Then no row became column names
    assert out.result.rows_out == 3
    assert out.table.column_names == ["col_1", "col_2", "col_3", "col_4"]
    assert out.table.column("col_3").to_pylist() == ["MG-8769", "MG-8770", "MG-8771"]


def test_header_false_in_the_dataset_document_is_honoured(run: Run) -> None:
    out = run(b"id,name\n1,a\n2,b\n", options=document(csv={"header": False}))
    assert out.table.column_names == ["col_1", "col_2"]
    assert out.table.column("col_1").to_pylist() == ["id", "1", "2"]


def test_header_true_in_the_dataset_document_is_honoured(run: Run) -> None:
    # an all-text file whose first row repeats below: detection alone keeps it as data
    data = b"Anna,Lisbon\nBob,Oslo\nAnna,Rome\n"
    assert run(data).result.rows_out == 3
    out = run(data, options=document(csv={"header": True}))
    assert out.table.column_names == ["anna", "lisbon"]
    assert out.result.rows_out == 2


def test_two_row_header_is_joined(run: Run) -> None:
    data = (
        b"customer,customer,amount\nid,name,eur\n"
        + "".join(f"{i},N{i},{i}.5\n" for i in range(30)).encode()
    )
    out = run(data)
    assert out.table.column_names == ["customer_id", "customer_name", "amount_eur"]
    assert out.result.rows_out == 30


def test_header_rows_in_the_dataset_document(run: Run) -> None:
    data = b"Orders,,\nid,name,eur\n" + "".join(f"{i},N{i},{i}\n" for i in range(5)).encode()
    out = run(data, options=document(csv={"header_rows": 2}))
    assert out.table.column_names == ["orders_id", "orders_name", "orders_eur"]
    assert out.result.rows_out == 5


# --------------------------------------------------------------------------- dialects


def test_cr_only_line_endings_load(run: Run) -> None:
    out = run(b"a,b,c\r1,2,3\r4,5,6\r")
    assert out.table.column_names == ["a", "b", "c"]
    assert out.table.to_pylist() == [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": 6}]


def test_a_preamble_is_skipped_and_recorded(run: Run) -> None:
    data = (
        b"Report generated 2024-03-01 09:12 by ERP\n\nid,name,amount\n"
        + "\n".join(rows(3)).encode()
        + b"\n"
    )
    out = run(data)
    assert out.table.column_names == ["id", "name", "amount"]
    assert out.result.rows_out == 3
    assert out.result.dialect is not None
    assert out.result.dialect.skip_lines == 2
    assert "2 lines skipped" in out.result.summary()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'id, city, n\n1, "New York, NY", 3\n2, Oslo, 4\n', ["New York, NY", "Oslo"]),
        (b'id;city;n\n1;"New York; NY";3\n2;Oslo;4\n', ["New York; NY", "Oslo"]),
        (b"id\tcity\tn\n1\tNew York, NY\t3\n2\tOslo\t4\n", ["New York, NY", "Oslo"]),
        (b"id|city|n\n1|New York, NY|3\n2|Oslo|4\n", ["New York, NY", "Oslo"]),
        (
            b"id,city,n\n1,'New York, NY',3\n2,Oslo,4\n3,'O''Brien',5\n",
            ["New York, NY", "Oslo", "O'Brien"],
        ),
        (b'id,city,n\n1,"27\\" screen, NY",3\n2,Oslo,4\n', ['27" screen, NY', "Oslo"]),
    ],
    ids=["comma_space", "semicolon", "tab", "pipe", "apostrophe_quotes", "backslash_escape"],
)
def test_dialects(run: Run, data: bytes, expected: list[str]) -> None:
    out = run(data)
    assert out.table.column_names == ["id", "city", "n"]
    assert out.table.column("city").to_pylist() == expected
    assert out.result.bad_row_count == 0


def test_comment_lines_are_skipped(run: Run) -> None:
    data = (
        b"# export of customers\n# by the ERP\nid,name,amount\n"
        + "\n".join(rows(20)).encode()
        + b"\n# page 2\n"
        + "\n".join(rows(20, 21)).encode()
        + b"\n"
    )
    out = run(data)
    assert out.table.column_names == ["id", "name", "amount"]
    assert out.result.rows_out == 40
    assert out.result.bad_row_count == 0


# --------------------------------------------------------------------------- bad rows


def _with_quoted_newline(n: int) -> list[str]:
    lines = rows(n)
    lines[1] = '2,"name\nover two lines",2.5'  # record 2 spans physical lines 3-4
    return lines


def test_one_bad_row_is_set_aside_by_default_at_its_physical_line(run: Run) -> None:
    # Given 40 rows, row 2 with a quoted newline, and row 30 with one field too many
    body = _with_quoted_newline(40)
    body[29] = "30,name 30,30.5,surplus"
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    # When converted with the default policy
    out = run(data)
    # Then the good rows load and the bad one is set aside with its physical line
    assert out.result.rows_out == 39
    assert out.result.bad_row_count == 1
    assert [e["line"] for e in out.exceptions] == [32]  # header 1, quoted newline +1
    assert out.result.bad_rows[0].line == 32
    assert 30 not in out.table.column("id").to_pylist()


def test_a_stray_quote_is_reported_at_its_real_line_and_the_rest_loads(run: Run) -> None:
    body = rows(60)
    body[48] = '49,"name 49,49.5'  # physical line 50
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    out = run(data)
    assert [e["line"] for e in out.exceptions] == [50]
    assert out.result.rows_out == 59
    assert out.table.column("id").to_pylist() == [i for i in range(1, 61) if i != 49]


def test_a_stray_quote_under_reject_names_its_real_line(run: Run) -> None:
    body = rows(60)
    body[48] = '49,"name 49,49.5'
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    with pytest.raises(RejectedFile) as err:
        run(data, options=document(bad_rows="reject"))
    assert err.value.bad_lines[:1] == [50]
    assert "line 50" in err.value.reason


def test_a_row_missing_a_delimiter_is_set_aside_not_resplit(run: Run) -> None:
    # Given a row whose delimiter after a quoted field with a comma is missing
    body = [f'{i},"Smith, Jr.",Lisbon,{i}.5' for i in range(1, 41)]
    body[19] = '20,"Smith, Jr." Lisbon,20.5'  # physical line 21: 3 fields, not 4
    data = ("id,name,city,amount\n" + "\n".join(body) + "\n").encode()
    out = run(data)
    # Then it is set aside at its line, and no loaded value comes from inside the quotes
    assert [e["line"] for e in out.exceptions] == [21]
    assert out.result.rows_out == 39
    assert set(out.table.column("name").to_pylist()) == {"Smith, Jr."}
    assert set(out.table.column("city").to_pylist()) == {"Lisbon"}


def test_too_many_bad_rows_reject_the_file_naming_their_lines(run: Run) -> None:
    # Given 20 rows of which 2 (10%, above the default 5%) have a field too many
    body = rows(20)
    body[4] += ",x"
    body[14] += ",y"
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    with pytest.raises(RejectedFile) as err:
        run(data)
    assert err.value.bad_lines[:2] == [6, 16]
    assert "5%" in err.value.reason or "0.05" in err.value.reason


def test_the_threshold_is_a_dataset_setting(run: Run) -> None:
    body = rows(20)
    body[4] += ",x"
    body[14] += ",y"
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    out = run(data, options=document(max_bad_row_fraction=0.2))
    assert out.result.rows_out == 18
    assert [e["line"] for e in out.exceptions] == [6, 16]


def test_reject_in_the_dataset_document_rejects_on_one_bad_row(run: Run) -> None:
    body = rows(100)
    body[49] += ",surplus"
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    with pytest.raises(RejectedFile) as err:
        run(data, options=document(bad_rows="reject"))
    assert err.value.bad_lines[:1] == [51]


def test_bad_rows_in_a_cr_only_file_have_their_physical_line(run: Run) -> None:
    body = rows(40)
    body[9] += ",surplus"
    data = ("id,name,amount\r" + "\r".join(body) + "\r").encode()
    out = run(data)
    assert [e["line"] for e in out.exceptions] == [11]
    assert out.result.rows_out == 39


def test_bad_rows_below_a_preamble_have_their_physical_line(run: Run) -> None:
    body = _with_quoted_newline(40)
    body[29] += ",surplus"
    data = ("Report\n\nid,name,amount\n" + "\n".join(body) + "\n").encode()
    out = run(data)
    assert [e["line"] for e in out.exceptions] == [34]
    assert out.result.rows_out == 39


def test_a_second_table_below_the_first_is_set_aside_not_loaded(run: Run) -> None:
    data = (
        "id,name,amount\n" + "\n".join(rows(100)) + "\n\nSummary\nregion,rows\nnorth,50\nsouth,50\n"
    ).encode()
    out = run(data)
    assert out.result.rows_out == 100
    # every line of the second table is accounted for: set aside with its line
    assert [e["line"] for e in out.exceptions] == [103, 104, 105, 106]


def test_setting_rows_aside_never_changes_the_landed_file(tmp_path: Path) -> None:
    # convert_file reads a local UTF-8 file in place: the lines set aside are emptied in
    # a copy, never in the file itself
    body = rows(60)
    body[48] = '49,"name 49,49.5'  # a quote that never closes
    body[20] = '21,name "21" x,21.5'  # a quote inside an unquoted field
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    src = tmp_path / "landed.csv"
    src.write_bytes(data)
    exceptions = tmp_path / "bad.jsonl"
    result = convert_file(str(src), str(tmp_path / "out.parquet"), exceptions_path=str(exceptions))
    assert src.read_bytes() == data
    assert [b.line for b in result.bad_rows] == [22, 50]
    assert result.rows_out == 58


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ('20;2024-09-21 07:31:00 "Lamp; LED";5;', "a delimiter missing before a quoted field"),
        ("20;2024-09-21 07:31:00;Lamp;LED;5;", "a field too many, the last one empty"),
    ],
)
def test_rows_that_would_load_shifted_are_set_aside(run: Run, bad: str, why: str) -> None:
    # Given rows whose last field is often empty, and one row broken as `why` says, which
    # a reader could split into the right number of fields with the values shifted
    body = [f'{i};2024-09-21 07:31:00;"Lamp; LED";{i};{"" if i % 2 else "x"}' for i in range(1, 41)]
    body[19] = bad  # physical line 21
    data = ("id;sold_at;product;qty;note\n" + "\n".join(body) + "\n").encode()
    out = run(data)
    assert [e["line"] for e in out.exceptions] == [21], why
    assert out.result.rows_out == 39
    assert set(out.table.column("product").to_pylist()) == {"Lamp; LED"}


def test_a_shifted_last_line_without_its_line_end_is_set_aside(run: Run) -> None:
    # Given a file without any quote whose last line, not ended, has a field too many and
    # an empty last one (the rows above end with a value, so only that line ends with ";")
    body = [f"{i};2024-09-21 07:31:00;Lamp;{i};x" for i in range(1, 41)]
    body[39] = "40;2024-09-21 07:31:00;Lamp;LED;5;"  # physical line 41, no newline after it
    data = ("id;sold_at;product;qty;note\n" + "\n".join(body)).encode()
    out = run(data)
    # Then it is set aside at its line; the rest loads
    assert [e["line"] for e in out.exceptions] == [41]
    assert out.result.rows_out == 39
    assert set(out.table.column("product").to_pylist()) == {"Lamp"}


def test_a_shifted_row_under_a_declared_schema_is_set_aside(run: Run) -> None:
    # Given a declared schema and a row with a field too many whose last one is empty
    # (no quote anywhere: DuckDB's own read would drop that field and load the row)
    body = [f"{i};Lamp;{i};x" for i in range(1, 41)]
    body[9] = "10;Lamp;LED;5;"  # physical line 11
    data = ("id;product;qty;note\n" + "\n".join(body) + "\n").encode()
    columns = (
        ColumnSpec("id", "bigint", nullable=False),
        ColumnSpec("product", "string"),
        ColumnSpec("qty", "bigint"),
        ColumnSpec("note", "string"),
    )
    out = run(data, options=DatasetOptions(columns=columns))
    # Then it is set aside at its line, with the declared types kept for the rest
    assert [e["line"] for e in out.exceptions] == [11]
    assert out.result.rows_out == 39
    assert set(out.table.column("product").to_pylist()) == {"Lamp"}
    assert out.table.schema.field("qty").type == pa.int64()


def test_a_shifted_row_in_a_file_with_quoted_line_ends_is_set_aside(run: Run) -> None:
    # Given quoted values holding a line end on every fifth row, and one row with a field
    # too many whose last one is empty (physical line 1 + 300 + 59 line ends above it)
    body = [
        f'{i},"first line\nsecond {i}",{i}.5' if i % 5 == 0 else f"{i},name {i},{i}.5"
        for i in range(1, 400)
    ]
    body[299] = f"300,name,LED,{300}.5,"
    data = ("id,name,amount\n" + "\n".join(body) + "\n").encode()
    out = run(data)
    assert [e["line"] for e in out.exceptions] == [360]
    assert out.result.rows_out == 398
    assert out.table.schema.field("amount").type == pa.float64()


def test_null_values_hold_in_the_checked_read(run: Run) -> None:
    # Given empty fields, quoted empty fields and a declared null text, last column too
    data = b'id,name,note\n1,,x\n2,"",NA\n3,NA,""\n4,b,\n'
    out = run(data, options=DatasetOptions(null_values=("", "NA")))
    assert out.table.column("name").to_pylist() == [None, None, None, "b"]
    assert out.table.column("note").to_pylist() == ["x", None, None, None]
    assert out.exceptions == []


def test_an_empty_line_of_a_one_column_file_is_a_null_value(run: Run) -> None:
    # Given a one-column export whose empty value is written as an empty line
    out = run(b"name\na\n\nb\n")
    # Then it is a row with a null, not a line skipped
    assert out.table.column("name").to_pylist() == ["a", None, "b"]
    assert out.result.rows_out == 3
