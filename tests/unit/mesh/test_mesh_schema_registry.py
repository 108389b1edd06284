"""The event contracts as EventBridge registry schemas, published idempotently.

moto has no EventSchemas API, so the publisher runs against botocore's Stubber, which
checks every request against the real service model.
"""

import json

import boto3
import pytest
from botocore.stub import Stubber
from jsonschema import Draft4Validator

from lakegov.errors import PermanentError
from lakegov.events import DETAIL_TYPES
from lakegov.mesh.schema_registry import (
    _draft4,
    publish_schemas,
    registry_schema,
    schema_name,
)

REFRESH = {
    "version": "0",
    "id": "1",
    "source": "lakegov",
    "detail-type": "DatasetRefreshed",
    "account": "111111111111",
    "time": "2026-11-20T10:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {
        "dataset": "sales/orders",
        "database": "db",
        "table": "orders",
        "refreshed_at": "2026-11-20T10:00:00.000Z",
    },
}


@pytest.mark.parametrize("detail_type", DETAIL_TYPES)
def test_every_contract_becomes_a_valid_draft4_event_schema(detail_type):
    schema = registry_schema(detail_type)
    Draft4Validator.check_schema(schema)
    assert schema["properties"]["detail-type"]["enum"] == [detail_type]
    assert "$id" not in json.dumps(schema) and "2020-12" not in json.dumps(schema)


def test_the_registry_schema_accepts_a_real_event_and_refuses_a_broken_one():
    validator = Draft4Validator(registry_schema("DatasetRefreshed"))
    assert list(validator.iter_errors(REFRESH)) == []
    broken = {**REFRESH, "detail": {k: v for k, v in REFRESH["detail"].items() if k != "table"}}
    assert [e.message for e in validator.iter_errors(broken)] == ["'table' is a required property"]
    assert list(validator.iter_errors({**REFRESH, "detail-type": "FileConverted"}))


def test_draft_2020_keywords_are_converted_or_refused():
    assert _draft4({"const": 1, "$defs": {"a": {"type": "string"}}, "$ref": "#/$defs/a"}) == {
        "enum": [1],
        "definitions": {"a": {"type": "string"}},
        "$ref": "#/definitions/a",
    }
    with pytest.raises(ValueError, match=r"\$\.properties\.x\.prefixItems"):
        _draft4({"properties": {"x": {"prefixItems": []}}})


def _client():
    return boto3.client("schemas", region_name="us-east-1")


def test_publishing_creates_missing_updates_changed_and_skips_unchanged_schemas():
    client = _client()
    stub = Stubber(client)
    not_found = {"service_error_code": "NotFoundException", "http_status_code": 404}
    # DatasetRefreshed: absent -> created
    stub.add_client_error("describe_schema", **not_found)
    stub.add_response(
        "create_schema",
        {"SchemaName": schema_name("DatasetRefreshed")},
        {
            "RegistryName": "r",
            "SchemaName": "lakegov@DatasetRefreshed",
            "Type": "JSONSchemaDraft4",
            "Content": json.dumps(registry_schema("DatasetRefreshed"), indent=2, sort_keys=True),
            "Description": "lakegov DatasetRefreshed event (source lakegov)",
        },
    )
    # SchemaChanged: same content -> nothing written
    same = json.dumps(registry_schema("SchemaChanged"))
    stub.add_response("describe_schema", {"Content": same})
    # FileConverted: different content -> a new version
    stub.add_response("describe_schema", {"Content": json.dumps({"old": True})})
    stub.add_response("update_schema", {"SchemaVersion": "2"})
    with stub:
        summary = publish_schemas(
            client, "r", ["DatasetRefreshed", "SchemaChanged", "FileConverted"]
        )
    stub.assert_no_pending_responses()
    assert summary == {
        "registry": "r",
        "created": ["lakegov@DatasetRefreshed"],
        "updated": ["lakegov@FileConverted"],
        "unchanged": ["lakegov@SchemaChanged"],
    }


def test_a_refusal_by_the_registry_is_a_clear_permanent_error():
    client = _client()
    stub = Stubber(client)
    stub.add_client_error("describe_schema", service_error_code="ForbiddenException")
    with stub, pytest.raises(PermanentError, match="ForbiddenException"):
        publish_schemas(client, "r", ["DatasetRefreshed"])
