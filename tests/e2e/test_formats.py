"""XML, workbooks and fixed-width files on the embedded runtime: upload -> Parquet ->
catalog -> the rows read back with Athena SQL."""

import json

import pytest
from tests.conftest import ROOT
from tests.e2e.test_query import run

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

STG = "lakegov_dev_formatted_stg"

ORDERS_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<o:orders xmlns:o="urn:example:orders" xmlns:c="urn:example:customer">
  <o:order id="1"><c:customer><c:zip>02134</c:zip></c:customer>
    <o:items><o:item sku="A-1"><o:qty>2</o:qty></o:item><o:item sku="B-2"><o:qty>1</o:qty></o:item></o:items>
  </o:order>
  <o:order id="2"><c:customer><c:zip>10001</c:zip></c:customer>
    <o:items><o:item sku="C-3"><o:qty>5</o:qty></o:item></o:items>
  </o:order>
</o:orders>
"""


def _query(service, sql):
    state, execution, rows, _ = run(service, sql, workgroup="e2e-convert")
    assert state == "SUCCEEDED", execution["Status"]
    return rows[1:]  # the first row holds the column names


def _document(service, name, doc):
    key = f"datasets/{name}.json"
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=json.dumps(doc).encode()
    )
    service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == key)


def _land(service, key, body):
    service.client("s3").put_object(Bucket=service.outputs["RawBucketName"], Key=key, Body=body)


@pytest.fixture(scope="module", autouse=True)
def documents(service):
    # before any landing: the convert function re-reads datasets/ at most every 30 s
    _document(
        service,
        "shop_workbooks",
        {
            "match": {"prefix": "shop/", "pattern": "*.xlsx"},
            "spreadsheet": {
                "sheets": ["Orders", {"name": "Customers", "table_name": "shop_customers"}]
            },
        },
    )
    _document(
        service,
        "bank",
        {
            "match": {"prefix": "bank/"},
            "format": "fixed_width",
            "fixed_width": {
                "columns": [{"name": "account", "width": 6}, {"name": "amount", "width": 8}]
            },
            "max_bad_row_fraction": 0.5,
        },
    )


def test_an_xml_upload_is_queried_with_its_nested_items(service):
    _land(service, "feeds/dt=2026-11-20/orders.xml", ORDERS_XML)
    service.wait_for_event("DatasetRefreshed", lambda d: d["table"] == "feeds_orders")
    rows = _query(
        service,
        "SELECT id, customer_zip, cardinality(items), items[1].sku, dt "
        "FROM feeds_orders ORDER BY id",
    )
    assert rows == [
        ["1", "02134", "2", "A-1", "2026-11-20"],
        ["2", "10001", "1", "C-3", "2026-11-20"],
    ]


def test_a_workbook_s_named_sheets_are_queried_as_two_tables(service):
    _land(service, "shop/book.xlsx", (ROOT / "tests/fixtures/formats/orders.xlsx").read_bytes())
    for table in ("shop_book_orders", "shop_customers"):
        service.wait_for_event("DatasetRefreshed", lambda d, t=table: d["table"] == t)
    orders = _query(service, "SELECT order_id, zip, total FROM shop_book_orders ORDER BY total")
    assert orders == [
        ["4", "94105", "3.0"],
        ["3", "00501", "6.0"],
        ["2", "10001", "8.5"],
        ["4", "94105", "14.0"],
        ["1", "02134", "21.0"],
    ]
    customers = _query(service, "SELECT customer_id, name FROM shop_customers ORDER BY 1")
    assert customers == [["C1", "Ada"], ["C2", "Grace"]]


def test_a_fixed_width_upload_is_queried_with_its_bad_line_set_aside(service):
    _land(service, "bank/statement.txt", b"000123   10.50\n0004\n000456    4.25\n")
    converted = service.wait_for_event("FileConverted", lambda d: d["key"] == "bank/statement.txt")
    assert converted["detail"]["bad_rows"] == 1
    service.wait_for_event("DatasetRefreshed", lambda d: d["table"] == "bank_statement")
    rows = _query(service, "SELECT account, amount FROM bank_statement ORDER BY account")
    assert rows == [["000123", "10.5"], ["000456", "4.25"]]


def test_a_billion_laughs_upload_is_quarantined_as_xml_unsafe(service):
    key = "feeds/lol.xml"
    _land(
        service,
        key,
        b'<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><l><r><v>&b;</v></r></l>',
    )
    rejected = service.wait_for_event("FileRejected", lambda d: d["key"] == key)["detail"]
    assert rejected["reason_code"] == "xml_unsafe"
    assert rejected["quarantine_key"] == f"quarantine/{key}"
