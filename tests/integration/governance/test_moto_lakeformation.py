"""The Lake Formation operations the embedded runtime adds to moto behave as AWS's do."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

DB, TABLE = "lakegov_dev_formatted", "mwaa_blog_cards"


def _filter(name: str, **body: Any) -> dict[str, Any]:
    return {
        "TableCatalogId": "123456789012",
        "DatabaseName": DB,
        "TableName": TABLE,
        "Name": name,
        **body,
    }


def _code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


def test_data_cells_filters_are_created_read_updated_listed_and_deleted(aws: Any) -> None:
    lf = aws["lf"]
    lf.create_data_cells_filter(
        TableData=_filter(
            "fr", RowFilter={"FilterExpression": "country = 'FR'"}, ColumnNames=["card_id"]
        )
    )
    key = {"TableCatalogId": "123456789012", "DatabaseName": DB, "TableName": TABLE, "Name": "fr"}
    assert lf.get_data_cells_filter(**key)["DataCellsFilter"]["ColumnNames"] == ["card_id"]
    lf.update_data_cells_filter(
        TableData=_filter("fr", RowFilter={"AllRowsWildcard": {}}, ColumnWildcard={})
    )
    updated = lf.get_data_cells_filter(**key)["DataCellsFilter"]
    assert updated["RowFilter"] == {"AllRowsWildcard": {}} and "ColumnNames" not in updated
    listed = lf.list_data_cells_filter(Table={"DatabaseName": DB, "Name": TABLE})
    assert [f["Name"] for f in listed["DataCellsFilters"]] == ["fr"]
    assert (
        lf.list_data_cells_filter(Table={"DatabaseName": DB, "Name": "hr_salaries"})[
            "DataCellsFilters"
        ]
        == []
    )
    lf.delete_data_cells_filter(**key)
    with pytest.raises(ClientError) as gone:
        lf.get_data_cells_filter(**key)
    assert _code(gone) == "EntityNotFoundException"


@pytest.mark.parametrize(
    ("table_data", "code"),
    [
        (
            _filter("x", RowFilter={"AllRowsWildcard": {}}, ColumnNames=["nope"]),
            "InvalidInputException",
        ),
        (_filter("x", RowFilter={"AllRowsWildcard": {}}), "InvalidInputException"),
        (_filter("x", ColumnWildcard={}), "InvalidInputException"),
        (
            {
                **_filter("x", RowFilter={"AllRowsWildcard": {}}, ColumnWildcard={}),
                "TableName": "missing",
            },
            "EntityNotFoundException",
        ),
    ],
    ids=["unknown-column", "no-columns", "no-row-filter", "no-table"],
)
def test_a_bad_filter_is_refused(aws: Any, table_data: dict[str, Any], code: str) -> None:
    with pytest.raises(ClientError) as refused:
        aws["lf"].create_data_cells_filter(TableData=table_data)
    assert _code(refused) == code


def test_a_filter_name_is_unique_per_table(aws: Any) -> None:
    data = _filter("x", RowFilter={"AllRowsWildcard": {}}, ColumnWildcard={})
    aws["lf"].create_data_cells_filter(TableData=data)
    with pytest.raises(ClientError) as twice:
        aws["lf"].create_data_cells_filter(TableData=data)
    assert _code(twice) == "AlreadyExistsException"


def test_resource_tags_add_up_key_by_key_and_untagged_resources_answer_empty(
    aws: Any,
) -> None:
    lf = aws["lf"]
    table = {"Table": {"DatabaseName": DB, "Name": TABLE}}
    assert "LFTagsOnTable" not in lf.get_resource_lf_tags(Resource=table)
    lf.create_lf_tag(TagKey="domain", TagValues=["blog"])
    lf.create_lf_tag(TagKey="pii", TagValues=["yes", "no"])
    lf.add_lf_tags_to_resource(Resource=table, LFTags=[{"TagKey": "domain", "TagValues": ["blog"]}])
    lf.add_lf_tags_to_resource(Resource=table, LFTags=[{"TagKey": "pii", "TagValues": ["no"]}])
    tags = lf.get_resource_lf_tags(Resource=table)["LFTagsOnTable"]
    assert {t["TagKey"]: t["TagValues"] for t in tags} == {"domain": ["blog"], "pii": ["no"]}
    failed = lf.add_lf_tags_to_resource(
        Resource=table, LFTags=[{"TagKey": "pii", "TagValues": ["maybe"]}]
    )["Failures"]
    assert failed[0]["Error"]["ErrorCode"] == "EntityNotFoundException"
    with pytest.raises(ClientError) as missing:
        lf.get_resource_lf_tags(Resource={"Table": {"DatabaseName": DB, "Name": "missing"}})
    assert _code(missing) == "EntityNotFoundException"


@pytest.mark.parametrize(
    "resource",
    [
        {"Database": {"Name": "lakegov_dev_missing"}},
        {"Table": {"DatabaseName": DB, "Name": "missing"}},
        {"TableWithColumns": {"DatabaseName": DB, "Name": TABLE, "ColumnNames": ["nope"]}},
    ],
    ids=["database", "table", "column"],
)
def test_tagging_a_resource_that_does_not_exist_is_refused(aws: Any, resource: Any) -> None:
    """AWS refuses it; moto stored the tags of a misspelt table for nobody."""
    lf = aws["lf"]
    lf.create_lf_tag(TagKey="domain", TagValues=["blog"])
    with pytest.raises(ClientError) as missing:
        lf.add_lf_tags_to_resource(
            Resource=resource, LFTags=[{"TagKey": "domain", "TagValues": ["blog"]}]
        )
    assert _code(missing) == "EntityNotFoundException"
