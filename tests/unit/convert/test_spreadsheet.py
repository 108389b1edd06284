"""Spreadsheets: workbooks written by XlsxWriter and saved by LibreOffice Calc
(tests/fixtures/formats/make_workbooks.py), converted like CSV exports of their sheets."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest
import xlsxwriter
from tests.conftest import ROOT

from lakegov.convert.options import DatasetOptions, SpreadsheetOptions, options_from_document
from lakegov.convert.spreadsheet import cell_text
from lakegov.errors import RejectedFile

Run = Callable[..., Any]
FIXTURES = ROOT / "tests/fixtures/formats"
WORKBOOKS = ["orders.xlsx", "orders_lo.xlsx", "orders.ods", "orders.xls"]

EXPECTED = [
    (1, "02134", 10.5, dt.date(2026, 11, 20), dt.datetime(2026, 11, 20, 8, 30), 21.0),
    (2, "10001", 4.25, dt.date(2026, 11, 21), dt.datetime(2026, 11, 21, 9, 0), 8.5),
    (3, "00501", 3.0, dt.date(2026, 11, 22), dt.datetime(2026, 11, 22, 17, 45), 6.0),
    (4, "94105", 7.0, None, None, 14.0),  # order 4: its id merged over two rows
    (4, "94105", 1.5, None, None, 3.0),
]


@pytest.mark.parametrize("name", WORKBOOKS)
def test_the_first_sheet_is_read_below_its_title_with_formulas_as_values(
    run: Run, name: str
) -> None:
    out = run((FIXTURES / name).read_bytes(), name)
    assert out.result.format == name.rsplit(".", 1)[-1]
    assert out.table.column_names == [
        "order_id",
        "zip",
        "amount",
        "ordered",
        "shipped_at",
        "paid",
        "total",
    ]
    schema = out.table.schema
    assert schema.field("order_id").type == pa.int64()  # 1.0 in the cell: an integer
    assert schema.field("zip").type == pa.string()  # text cells keep leading zeros
    assert schema.field("ordered").type == pa.date32()
    assert schema.field("shipped_at").type == pa.timestamp("us")
    rows = [
        (r["order_id"], r["zip"], r["amount"], r["ordered"], r["shipped_at"], r["total"])
        for r in out.table.to_pylist()
    ]
    # the empty formatted cells right of and below the table are not columns or rows
    assert rows == EXPECTED


@pytest.mark.parametrize("name", ["orders.xlsx", "orders.xls"])
def test_booleans_are_booleans(run: Run, name: str) -> None:
    out = run((FIXTURES / name).read_bytes(), name)
    assert out.table.column("paid").to_pylist() == [True, False, True, None, None]


def test_libreoffice_saves_booleans_as_numbers_in_ods(run: Run) -> None:
    # Calc writes TRUE/FALSE as 1/0 with a boolean number format: they are numbers there
    out = run((FIXTURES / "orders.ods").read_bytes(), "orders.ods")
    assert out.table.column("paid").to_pylist() == [1, 0, 1, None, None]


@pytest.mark.parametrize("name", WORKBOOKS)
def test_a_named_sheet_is_read_instead_of_the_first(run: Run, name: str) -> None:
    options = DatasetOptions(sheet="Customers")
    out = run((FIXTURES / name).read_bytes(), name, options=options)
    assert out.table.to_pylist() == [
        {"customer_id": "C1", "name": "Ada"},
        {"customer_id": "C2", "name": "Grace"},
    ]


def test_a_missing_sheet_is_refused_naming_the_sheets(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run((FIXTURES / "orders.xlsx").read_bytes(), "o.xlsx", options=DatasetOptions(sheet="X"))
    assert err.value.reason_code == "schema_mismatch"
    assert "Orders, Customers" in err.value.reason


def test_a_workbook_is_read_whatever_its_name(run: Run) -> None:
    out = run((FIXTURES / "orders.ods").read_bytes(), "export.bin")
    assert out.result.format == "ods" and out.result.rows_out == 5


def _book(write: Callable[[Any, Any], None]) -> bytes:
    buffer = io.BytesIO()
    wb = xlsxwriter.Workbook(buffer, {"in_memory": True})
    write(wb, wb.add_worksheet("Sheet1"))
    wb.close()
    return buffer.getvalue()


def test_a_sheet_without_header_gets_generated_names(run: Run) -> None:
    def write(_: Any, ws: Any) -> None:
        for r in range(3):
            ws.write_row(r, 0, [r + 1, f"2026-11-2{r}"])

    out = run(_book(write), "n.xlsx")
    assert out.table.column_names == ["col_1", "col_2"]
    assert out.table.column("col_1").to_pylist() == [1, 2, 3]
    forced = DatasetOptions(spreadsheet=SpreadsheetOptions(header=True))
    assert run(_book(write), "n.xlsx", options=forced).table.column_names == [
        "c_1",
        "c_2026_11_20",
    ]


def test_skip_rows_and_header_from_a_dataset_document(run: Run) -> None:
    def write(_: Any, ws: Any) -> None:
        ws.write_row(0, 0, ["exported", "by", "someone"])
        ws.write_row(1, 0, ["a", "b", "c"])
        ws.write_row(2, 0, ["x", "y", "z"])

    _, options = options_from_document(
        {"match": {"prefix": "p/"}, "spreadsheet": {"skip_rows": 1, "header": True}}
    )
    assert run(_book(write), "s.xlsx", options=options).table.to_pylist() == [
        {"a": "x", "b": "y", "c": "z"}
    ]


def test_a_declared_schema_sets_rows_aside_with_their_sheet_row(run: Run) -> None:
    def write(_: Any, ws: Any) -> None:
        ws.write_row(0, 0, ["id", "amount"])
        ws.write_row(1, 0, [1, 2.5])
        ws.write_row(3, 0, ["n/a", 3])  # row 3 is empty: not a row
        ws.write_row(4, 0, [3, 4])

    _, options = options_from_document(
        {
            "match": {"prefix": "p/"},
            "schema": {
                "columns": [{"name": "id", "type": "bigint"}, {"name": "amount", "type": "double"}]
            },
            "max_bad_row_fraction": 0.5,
        }
    )
    out = run(_book(write), "s.xlsx", options=options)
    assert out.table.column("id").to_pylist() == [1, 3]
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [(4, "schema_mismatch")]


def test_an_empty_sheet_is_empty(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(_book(lambda wb, ws: None), "e.xlsx")
    assert err.value.reason_code == "empty"


def test_a_zip_that_is_not_a_workbook_is_refused_as_an_archive(run: Run) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("orders.csv", "a,b\n1,2\n")
    with pytest.raises(RejectedFile) as err:
        run(buffer.getvalue(), "orders.xlsx")
    assert err.value.reason_code == "unsupported_format"
    assert "not a readable workbook" in err.value.reason


def test_a_workbook_inflating_beyond_the_ratio_is_a_bomb(run: Run) -> None:
    def write(_: Any, ws: Any) -> None:
        for r in range(60_000):
            ws.write_row(r, 0, ["same text"] * 8)

    data = _book(write)
    with pytest.raises(RejectedFile) as err:
        run(data, "big.xlsx", options=DatasetOptions(max_decompression_ratio=2))
    assert err.value.reason_code == "decompression_bomb"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("", None),
        (3.0, "3"),
        (2.5, "2.5"),
        (1e300, "1e+300"),
        (True, "true"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02 03:04:05"),
        (dt.time(8, 30), "08:30:00"),
        ("007", "007"),
    ],
)
def test_cells_read_as_the_text_a_csv_export_holds(value: Any, text: str | None) -> None:
    assert cell_text(value) == text
