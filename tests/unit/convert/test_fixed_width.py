"""Fixed-width text declared by a datasets/ document: fields by width or position, typed
like CSV, short and long lines set aside with their line numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from lakegov.convert.options import options_from_document
from lakegov.errors import InvalidDocument, RejectedFile

Run = Callable[..., Any]

DOC = {
    "match": {"prefix": "bank/"},
    "format": "fixed_width",
    "fixed_width": {
        "skip_lines": 1,
        "columns": [
            {"name": "id", "width": 5},
            {"name": "name", "width": 10},
            {"name": "zip", "width": 5},
            {"name": "amount", "start": 21, "end": 28},
        ],
    },
    "max_bad_row_fraction": 0.5,
}

LINES = (
    "ID   NAME      ZIP   AMOUNT\n"
    "00001Ada       02134   10.50\n"
    "00002Grace     10001    4.25\n"
    "\n"
    "00003Linus\n"
    "00004Ken       00501    3.00 and more\n"
    "00005Barbara   94105   12.00   \n"
    "00006Zoë       75001   \n"
)


def _options(**changes: Any) -> Any:
    return options_from_document({**DOC, **changes})[1]


def test_fields_are_cut_trimmed_and_typed_like_csv(run: Run) -> None:
    out = run(LINES.encode(), "statement.txt", options=_options())
    assert out.result.format == "fixed_width"
    schema = out.table.schema
    assert schema.field("id").type == pa.string()  # 00001: leading zeros stay text
    assert schema.field("amount").type == pa.float64()
    assert out.table.to_pylist() == [
        {"id": "00001", "name": "Ada", "zip": "02134", "amount": 10.5},
        {"id": "00002", "name": "Grace", "zip": "10001", "amount": 4.25},
        {"id": "00005", "name": "Barbara", "zip": "94105", "amount": 12.0},
        # its last field cut by an editor that trims trailing blanks: null, not bad
        {"id": "00006", "name": "Zoë", "zip": "75001", "amount": None},
    ]


def test_short_and_long_lines_are_bad_rows_with_their_line_numbers(run: Run) -> None:
    out = run(LINES.encode(), "statement.txt", options=_options())
    assert out.result.rows_in == 6 and out.result.bad_row_count == 2
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [
        (5, "ragged_rows"),
        (6, "ragged_rows"),
    ]
    assert "ends before column amount" in out.exceptions[0]["reason"]
    assert "more than the record width of 28" in out.exceptions[1]["reason"]
    assert out.exceptions[0]["raw"] == "00003Linus"


def test_policy_reject_names_the_first_bad_lines(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(LINES.encode(), "statement.txt", options=_options(bad_rows="reject"))
    assert err.value.reason_code == "ragged_rows" and err.value.bad_lines == [5, 6]
    assert err.value.reason.startswith("line 5:")


def test_a_declared_schema_is_enforced_with_line_numbers(run: Run) -> None:
    columns = [
        {"name": "id", "type": "string"},
        {"name": "name", "type": "string"},
        {"name": "zip", "type": "string"},
        {"name": "amount", "type": "decimal(8,2)"},
    ]
    text = LINES.replace("   4.25", "   4,25")
    out = run(text.encode(), "s.txt", options=_options(schema={"columns": columns}))
    assert out.table.column("id").to_pylist() == ["00001", "00005", "00006"]
    assert str(out.table.schema.field("amount").type) == "decimal128(8, 2)"
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [
        (3, "schema_mismatch"),
        (5, "ragged_rows"),
        (6, "ragged_rows"),
    ]


def test_the_file_is_decoded_with_the_dataset_encoding(run: Run) -> None:
    text = "00001Müller    02134    1.00\n"
    doc = {**DOC, "fixed_width": {**DOC["fixed_width"], "skip_lines": 0}, "encoding": "latin-1"}
    out = run(text.encode("latin-1"), "s.txt", options=options_from_document(doc)[1])
    assert out.table.column("name").to_pylist() == ["Müller"]


def test_without_columns_the_format_is_refused_by_the_document() -> None:
    with pytest.raises(InvalidDocument) as err:
        options_from_document({"match": {"prefix": "x/"}, "format": "fixed_width"})
    assert err.value.issues[0].path == "$.fixed_width"


def test_overlapping_columns_are_refused_with_their_path() -> None:
    doc = {
        "match": {"prefix": "x/"},
        "fixed_width": {
            "columns": [{"name": "a", "width": 5}, {"name": "b", "start": 3, "width": 2}]
        },
    }
    with pytest.raises(InvalidDocument) as err:
        options_from_document(doc)
    assert err.value.issues[0].path == "$.fixed_width.columns[1].start"


def test_a_fixed_width_export_written_by_pandas_to_string(run: Run) -> None:
    # DataFrame.to_string is a common fixed-width export: right-aligned columns under a
    # header line, missing values written as NaN / None
    import pandas as pd

    frame = pd.DataFrame(
        {
            "order_id": ["00017", "00018", "00019"],
            "placed": ["2026-11-20", "2026-11-21", None],
            "amount": [10.5, 4.25, 1200.0],
        }
    )
    text = frame.to_string(index=False) + "\n"
    header = text.splitlines()[0]
    ends = [header.index(name) + len(name) for name in frame.columns]
    starts = [1, *(end + 1 for end in ends[:-1])]
    doc = {
        "match": {"prefix": "exports/"},
        "format": "fixed_width",
        "csv": {"null_values": ["", "NaN", "None"]},  # the null texts of every text format
        "fixed_width": {
            "skip_lines": 1,
            "columns": [
                {"name": name, "start": start, "end": end}
                for name, start, end in zip(frame.columns, starts, ends, strict=True)
            ],
        },
    }
    out = run(text.encode(), "export.txt", options=options_from_document(doc)[1])
    assert out.result.format == "fixed_width" and out.result.rows_out == 3
    assert out.table.schema.field("order_id").type == pa.string()
    assert out.table.schema.field("amount").type == pa.float64()
    assert [r["order_id"] for r in out.table.to_pylist()] == ["00017", "00018", "00019"]
    assert [r["amount"] for r in out.table.to_pylist()] == [10.5, 4.25, 1200.0]
    assert out.table.to_pylist()[2]["placed"] is None
