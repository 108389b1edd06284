"""datasets/ documents: JSON Schema validation and mapping onto DatasetOptions."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pyarrow as pa
import pytest
from jsonschema import Draft202012Validator

from lakegov.convert.options import (
    DatasetOptions,
    load_document,
    options_from_document,
    select_document,
)
from lakegov.errors import InvalidDocument

FULL = {
    "dataset": "blog customers",
    "match": {"prefix": "mwaa/blog/", "pattern": "customers*"},
    "table_name": "blog_customers",
    "format": "csv",
    "compression": "gzip",
    "encoding": "latin-1",
    "csv": {"delimiter": ";", "quotechar": "'", "header": False, "null_values": ["", "NULL"]},
    "schema": {
        "columns": [
            {"name": "id", "type": "bigint", "nullable": False},
            {"name": "amount", "type": "decimal(10,2)"},
        ],
        "changes": "any",
    },
    "bad_rows": "exceptions",
    "max_bad_row_fraction": 0.2,
    "limits": {"max_file_bytes": 1000, "max_decompression_ratio": 50},
    "catalog": {"mode": "direct"},
}


def test_schema_file_is_valid_draft_2020_12() -> None:
    text = resources.files("lakegov").joinpath("schemas/dataset.schema.json").read_text("utf-8")
    Draft202012Validator.check_schema(json.loads(text))


def test_full_document_maps_onto_options() -> None:
    match, options = options_from_document(FULL)
    assert match.prefix == "mwaa/blog/" and match.pattern == "customers*"
    assert options.format == "csv" and options.compression == "gzip"
    assert options.delimiter == ";" and options.quotechar == "'" and options.header is False
    assert options.null_values == ("", "NULL")
    assert options.encoding == "latin-1"
    assert options.bad_rows == "exceptions" and options.schema_changes == "any"
    assert options.max_bad_row_fraction == 0.2
    assert options.max_file_bytes == 1000 and options.max_decompression_ratio == 50
    assert options.table_name == "blog_customers" and options.catalog_mode == "direct"
    declared = options.declared_schema()
    assert declared is not None
    assert declared.field("id").type == pa.int64() and not declared.field("id").nullable
    assert declared.field("amount").type == pa.decimal128(10, 2)


def test_minimal_document_gives_defaults() -> None:
    _, options = options_from_document({"match": {"prefix": "x/"}})
    assert options == DatasetOptions()
    # bad rows are set aside unless more than 5% of the rows are bad
    assert options.bad_rows == "exceptions" and options.max_bad_row_fraction == 0.05


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({}, "$"),
        ({"match": {"prefix": "x/"}, "bad_rows": "drop"}, "$.bad_rows"),
        ({"match": {"prefix": "x/"}, "csv": {"delimiter": "::"}}, "$.csv.delimiter"),
        ({"match": {"prefix": "x/"}, "table_name": "Bad Name"}, "$.table_name"),
        (
            {"match": {"prefix": "x/"}, "schema": {"columns": [{"name": "a", "type": "varchar2"}]}},
            "$.schema.columns[0].type",
        ),
        (
            {
                "match": {"prefix": "x/"},
                "schema": {"columns": [{"name": "a", "type": "int"}, {"name": "a", "type": "int"}]},
            },
            "$.schema.columns[1].name",
        ),
        ({"match": {"prefix": "x/"}, "encoding": "klingon"}, "$.encoding"),
        ({"match": {"prefix": "x/"}, "max_bad_row_fraction": 1.5}, "$.max_bad_row_fraction"),
        ({"match": {"prefix": "x/"}, "limits": {"max_file_bytes": 0}}, "$.limits.max_file_bytes"),
        ({"match": {"prefix": "x/"}, "surprise": 1}, "$.surprise"),
    ],
)
def test_invalid_documents_name_the_json_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidDocument) as err:
        options_from_document(doc, source="datasets/x.json")
    assert path in [issue.path for issue in err.value.issues]
    assert "datasets/x.json" in str(err.value)


def test_the_most_specific_matching_document_wins() -> None:
    broad = load_document({"match": {"prefix": "mwaa/"}, "bad_rows": "reject"})
    narrow = load_document({"match": {"prefix": "mwaa/blog/"}, "bad_rows": "exceptions"})
    pattern = load_document(
        {"match": {"prefix": "mwaa/blog/", "pattern": "cards*"}, "format": "json"}
    )
    docs = [broad, narrow, pattern]
    assert select_document(docs, "mwaa/blog/dt=1/customers.csv") is narrow
    assert select_document(docs, "mwaa/blog/dt=1/cards.csv") is pattern
    assert select_document(docs, "mwaa/other/x.csv") is broad
    assert select_document(docs, "elsewhere/x.csv") is None


def test_format_blocks_are_read_into_options() -> None:
    from lakegov.convert.options import FixedWidthColumn, SheetSpec

    _, options = options_from_document(
        {
            "match": {"prefix": "x/"},
            "xml": {"record_path": "/export/orders/order"},
            "spreadsheet": {
                "sheets": ["A", {"name": "B", "table_name": "b_table"}],
                "skip_rows": 2,
            },
            "fixed_width": {
                "columns": [{"name": "a", "width": 2}, {"name": "b", "start": 5, "end": 6}]
            },
        }
    )
    assert options.xml.record_path == ("export", "orders", "order")
    assert options.spreadsheet.sheets == (SheetSpec("A"), SheetSpec("B", "b_table"))
    assert options.spreadsheet.skip_rows == 2 and options.spreadsheet.header is None
    assert options.fixed_width is not None
    assert options.fixed_width.columns == (FixedWidthColumn("a", 1, 2), FixedWidthColumn("b", 5, 2))
    assert options.fixed_width.record_width == 6


@pytest.mark.parametrize(
    ("block", "path"),
    [
        ({"spreadsheet": {"sheets": ["A", "A"]}}, "$.spreadsheet.sheets"),
        (
            {"spreadsheet": {"sheets": [{"name": "A", "table_name": "Bad Name"}]}},
            "$.spreadsheet.sheets[0]",
        ),
        ({"xml": {"record_path": "a//b"}}, "$.xml.record_path"),
        ({"fixed_width": {"columns": [{"name": "a"}]}}, "$.fixed_width.columns[0]"),
        (
            {"fixed_width": {"columns": [{"name": "a", "width": 1}, {"name": "a", "width": 1}]}},
            "$.fixed_width.columns",
        ),
        ({"format": "xlsb"}, "$.format"),
    ],
)
def test_bad_format_blocks_are_refused_with_their_path(block: dict, path: str) -> None:
    with pytest.raises(InvalidDocument) as err:
        options_from_document({"match": {"prefix": "x/"}, **block})
    assert err.value.issues[0].path == path


def test_compaction_is_off_by_default_and_set_by_the_document() -> None:
    _, default = options_from_document({"match": {"prefix": "a/"}})
    assert default.compaction.enabled is False
    _, options = options_from_document(
        {"match": {"prefix": "a/"}, "compaction": {"enabled": True, "target_file_mb": 64}}
    )
    assert options.compaction.enabled is True
    assert options.compaction.target_bytes == 64 * 1024**2
    assert options.compaction.min_files == 4


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"compaction": {"enabled": "yes"}}, "$.compaction.enabled"),
        ({"compaction": {"target_file_mb": 0}}, "$.compaction.target_file_mb"),
        ({"compaction": {"min_files": 1}}, "$.compaction.min_files"),
        ({"compaction": {"every": "1h"}}, "$.compaction.every"),
        # a crawler would undo the partition locations compaction switches
        ({"compaction": {"enabled": True}, "catalog": {"mode": "crawler"}}, "$.compaction.enabled"),
    ],
)
def test_bad_compaction_settings_name_their_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidDocument) as refused:
        options_from_document({"match": {"prefix": "a/"}, **doc})
    assert path in [issue.path for issue in refused.value.issues]
