"""Regressions found by QA: lossy integers, binary files, unclear rejections, header names."""

from __future__ import annotations

import gzip
import os
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile
from lakegov.layout import split_file_name

Run = Callable[..., Any]

# --------------------------------------------------------------------------- exact integers


def test_int64_beyond_2_53_stays_int64_exactly(run: Run) -> None:
    # Given integers that fit int64 but not a float64 exactly
    out = run(b"id,acct\n1,9007199254740993\n2,-9007199254740995\n3,5\n")
    # Then the column is int64 and every digit is kept
    assert out.table.schema.field("acct").type == pa.int64()
    assert out.table.column("acct").to_pylist() == [9007199254740993, -9007199254740995, 5]


def test_integers_beyond_int64_are_decimal(run: Run) -> None:
    # Given the QA file: one integer above int64's range
    out = run(b"id,acct\n1,9007199254740993\n2,12345678901234567890\n3,-1\n")
    # Then the column is decimal(38,0) and no value is rounded
    assert out.table.schema.field("acct").type == pa.decimal128(38, 0)
    assert out.table.column("acct").to_pylist() == [
        Decimal("9007199254740993"),
        Decimal("12345678901234567890"),
        Decimal("-1"),
    ]


def test_integers_beyond_38_digits_are_text(run: Run) -> None:
    big = "1" + "0" * 39
    out = run(f"a\n{big}\n7\n".encode())
    assert out.table.schema.field("a").type == pa.string()
    assert out.table.column("a").to_pylist() == [big, "7"]


def test_small_ints_then_floats_still_widen_to_double(run: Run) -> None:
    out = run(b"a\n1\n2\n2.5\n")
    assert out.table.schema.field("a").type == pa.float64()
    assert out.table.column("a").to_pylist() == [1.0, 2.0, 2.5]


@pytest.mark.parametrize("big", ["9007199254740993", "12345678901234567890"])
def test_wide_ints_and_floats_in_one_block_are_text(run: Run, big: str) -> None:
    out = run(f"a\n{big}\n2.5\n".encode())
    assert out.table.schema.field("a").type == pa.string()
    assert out.table.column("a").to_pylist() == [big, "2.5"]


def test_wide_ints_then_floats_in_later_row_group_are_text(run: Run) -> None:
    # Given wide integers in the first row groups and a float far later (other blocks)
    rows = [str(9007199254740993 + i) for i in range(30_000)] + ["1.5"]
    data = ("a\n" + "\n".join(rows) + "\n").encode()
    out = run(data, row_group_rows=4096)
    # Then the file is text (rewritten once), every integer kept as written
    assert out.result.row_groups > 1
    assert out.table.schema.field("a").type == pa.string()
    assert out.table.column("a").to_pylist() == rows


def test_floats_then_wide_ints_in_later_block_are_text(run: Run) -> None:
    rows = ["1.5"] * 400 + ["9007199254740993"]
    out = run(("a\n" + "\n".join(rows) + "\n").encode(), row_group_rows=100)
    assert out.table.schema.field("a").type == pa.string()
    assert out.table.column("a").to_pylist()[-1] == "9007199254740993"


def test_previous_float_schema_does_not_round_wide_ints(run: Run) -> None:
    # Given a dataset whose column is double / When a file brings a wide integer
    previous = pa.schema([pa.field("a", pa.float64())])
    data = b"a\n9007199254740993\n"
    # Then it is a breaking change (double -> string), never a silent rounding
    with pytest.raises(RejectedFile) as err:
        run(data, previous_schema=previous)
    assert err.value.reason_code == "schema_change"
    out = run(data, previous_schema=previous, options=DatasetOptions(schema_changes="any"))
    assert out.table.column("a").to_pylist() == ["9007199254740993"]


def test_long_float_literals_stay_double(run: Run) -> None:
    # floats are float64 whatever their digits: that is what a float literal means
    out = run(b"a\n0.1000000000000000055511151231257827\n1.5\n")
    assert out.table.schema.field("a").type == pa.float64()


def test_hex_looking_values_stay_text(run: Run) -> None:
    # Arrow would read "0x1F" as 31
    out = run(b"code\n0x1F\n0x20\n")
    assert out.table.column("code").to_pylist() == ["0x1F", "0x20"]


def test_json_integers_are_exact(run: Run) -> None:
    data = (
        b'{"a": 12345678901234567890, "b": 9007199254740993, "c": 9007199254740993, '
        b'"n": {"x": 12345678901234567890, "l": [9007199254740993]}}\n'
        b'{"a": 1, "b": 1.5, "c": 2, "n": {"x": 1, "l": [1.5]}}\n'
    )
    out = run(data, "f.jsonl")
    schema = out.table.schema
    assert schema.field("a").type == pa.decimal128(38, 0)  # beyond int64
    assert schema.field("b").type == pa.string()  # wide int and a float
    assert schema.field("c").type == pa.int64()
    rows = out.table.to_pylist()
    assert rows[0]["a"] == Decimal("12345678901234567890")
    assert [r["b"] for r in rows] == ["9007199254740993", "1.5"]
    assert rows[0]["c"] == 9007199254740993
    assert rows[0]["n"] == {"x": Decimal("12345678901234567890"), "l": ["9007199254740993"]}
    assert rows[1]["n"] == {"x": Decimal("1"), "l": ["1.5"]}


def test_json_wide_int_then_float_in_later_row_group_is_text(run: Run) -> None:
    lines = [b'{"a": 9007199254740993}'] * 300 + [b'{"a": 0.5}']
    out = run(b"\n".join(lines) + b"\n", "f.jsonl", row_group_rows=100)
    assert out.table.schema.field("a").type == pa.string()
    assert out.table.column("a").to_pylist()[0] == "9007199254740993"
    assert out.table.column("a").to_pylist()[-1] == "0.5"


def test_json_long_digits_in_strings_change_nothing(run: Run) -> None:
    out = run(b'{"card": "4111111111111111111", "x": 1.5}\n', "f.jsonl")
    assert out.table.to_pylist() == [{"card": "4111111111111111111", "x": 1.5}]


# --------------------------------------------------------------------------- binary files


@pytest.mark.parametrize("name", ["x.csv", "x.json", "x.csv.gz", "x"])
def test_binary_file_is_refused_as_binary(run: Run, name: str) -> None:
    # Given 4096 random bytes named like a text file
    data = random.Random(7).randbytes(4096)
    if name.endswith(".gz"):
        data = gzip.compress(data)
    # Then it is refused as binary with the NUL byte's offset, not as "empty"
    with pytest.raises(RejectedFile) as err:
        run(data, name)
    assert err.value.reason_code == "malformed"
    assert "binary" in err.value.reason and "NUL byte at offset" in err.value.reason


def test_zip_content_named_csv_is_refused_with_a_hint(run: Run) -> None:
    # a ZIP is read as a workbook whatever its name; one that is not is refused
    with pytest.raises(RejectedFile) as err:
        run(b"PK\x03\x04" + os.urandom(100), "report.csv")
    assert err.value.reason_code == "unsupported_format"
    assert "not a readable workbook" in err.value.reason and "gzip" in err.value.reason


def test_utf16_file_with_nul_bytes_is_still_text(run: Run) -> None:
    out = run("a,b\n1,x\n".encode("utf-16"), "f.csv")
    assert out.table.to_pylist() == [{"a": 1, "b": "x"}]


# --------------------------------------------------------------------------- rejection messages


@pytest.mark.parametrize(
    ("ext", "fmt"), [("xls", "xls"), ("xlsx", "xlsx"), ("xlsm", "xlsx"), ("ods", "ods")]
)
def test_spreadsheet_names_give_their_format(ext: str, fmt: str) -> None:
    # spreadsheets are converted now (tests/unit/convert/test_spreadsheet.py)
    assert split_file_name(f"budget.{ext}").format == fmt


@pytest.mark.parametrize("ext", ["zip", "7z", "tar", "rar"])
def test_archives_keep_the_compression_hint(ext: str) -> None:
    with pytest.raises(RejectedFile) as err:
        split_file_name(f"orders.{ext}")
    assert "archives are not supported" in err.value.reason
    assert "gzip" in err.value.reason and "zstd" in err.value.reason


@pytest.mark.parametrize("ext", ["xz", "lz4"])
def test_other_codecs_name_the_supported_ones(ext: str) -> None:
    with pytest.raises(RejectedFile) as err:
        split_file_name(f"orders.csv.{ext}")
    assert f"{ext} compression is not supported" in err.value.reason
    assert "gzip (.gz), bzip2 (.bz2) and zstd (.zst)" in err.value.reason


# --------------------------------------------------------------------------- header names


def test_duplicate_header_names_keep_every_column(run: Run) -> None:
    out = run(b"a,a,b,a\n1,2,3,4\n")
    assert out.table.to_pylist() == [{"a": 1, "a_2": 2, "b": 3, "a_3": 4}]
    assert out.result.renamed_columns == {"a (column 2)": "a_2", "a (column 4)": "a_3"}


def test_empty_header_names_keep_every_column(run: Run) -> None:
    out = run(b",,x\n1,2,3\n")
    assert out.table.to_pylist() == [{"col_1": 1, "col_2": 2, "x": 3}]


# --------------------------------------------------------------------------- realistic inputs


def test_excel_decimal_commas_stay_text(run: Run) -> None:
    out = run("Name;Amount\nAnn;12,50\nBob;1.234,50\n".encode("cp1252"))
    assert out.result.delimiter == ";"
    assert out.table.column("amount").to_pylist() == ["12,50", "1.234,50"]


def test_lattice_joins_decimals_exactly() -> None:
    from lakegov.schema import join_types

    dec = pa.decimal128(38, 0)
    assert join_types(pa.int64(), dec) == dec
    assert join_types(dec, pa.float64()) == pa.string()  # no exact common number type
    assert join_types(pa.int32(), pa.decimal128(10, 2)) == pa.decimal128(21, 2)
    assert join_types(pa.decimal128(38, 0), pa.decimal128(10, 2)) == pa.string()  # 40 digits


# --------------------------------------------------------------------------- JSON keys and case


@pytest.mark.parametrize(
    "data",
    [
        b'{"Id": 1, "id": 2}\n{"ID": 3}\n',  # JSON Lines, DuckDB's fast path
        b'[{"Id": 1, "id": 2}]',  # an array
        b'{"n": 1, "a": 1}\n{"n": 2, "a": "x", "A": 5}\n',  # mixed types: lakegov's typed path
    ],
)
def test_json_keys_differing_only_in_case_are_refused_not_merged(run: Run, data: bytes) -> None:
    # Given records whose keys differ only in case (DuckDB reads keys without regard to
    # case: it renamed `id` to `id_1` and the values under it came out NULL)
    # Then the file is refused, naming both keys, rather than loaded with values lost
    with pytest.raises(RejectedFile) as err:
        run(data, "records.json")
    assert err.value.reason_code == "malformed" and "differ only in case" in err.value.reason
