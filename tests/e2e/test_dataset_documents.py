"""A datasets/ document changes how matching files are read, on the embedded runtime."""

import io
import json

import pyarrow.parquet as pq
import pytest
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]


def test_a_dataset_document_is_validated_then_used_for_its_files(service):
    out = service.outputs
    s3 = service.client("s3")
    key = "datasets/sales_orders.json"
    s3.put_object(
        Bucket=out["ConfigBucketName"],
        Key=key,
        Body=(ROOT / "examples/datasets/sales_orders.json").read_bytes(),
    )
    applied = service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert applied["kind"] == "dataset"

    body = "order_id;customer;amount;order_date\n1;Müller;12.50;2026-11-20\nx;Åsa;3;2026-11-20\n2;Ñoño;7.25;2026-11-21\n"
    landed = "erp/sales/export_2026_11_20.csv"
    s3.put_object(Bucket=out["RawBucketName"], Key=landed, Body=body.encode("latin-1"))
    converted = service.wait_for_event("FileConverted", lambda d: d["key"] == landed)["detail"]
    assert (
        converted["table"] == "sales_orders"
        and converted["rows"] == 2
        and converted["bad_rows"] == 1
    )
    data = s3.get_object(Bucket=out["FormattedBucketName"], Key=converted["output_keys"][0])[
        "Body"
    ].read()
    table = pq.read_table(io.BytesIO(data))
    assert table.column("customer").to_pylist() == ["Müller", "Ñoño"]
    assert str(table.schema.field("amount").type) == "decimal128(12, 2)"
    exceptions = s3.get_object(Bucket=out["FormattedBucketName"], Key=converted["exceptions_key"])[
        "Body"
    ].read()
    assert json.loads(exceptions.decode().splitlines()[0])["line"] == 3


def test_a_bad_dataset_document_is_refused_with_its_path(service):
    key = "datasets/broken.json"
    doc = {"match": {"prefix": "x/"}, "csv": {"delimiter": "::"}}
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=json.dumps(doc).encode()
    )
    rejected = service.wait_for_event("GovernanceRejected", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert rejected["kind"] == "dataset" and rejected["errors"][0]["path"] == "$.csv.delimiter"
