"""The local endpoint's per-operation figures: each AWS call counted under the name its
protocol gives it, with the CPU time it took, and the requests answered as before."""

from __future__ import annotations

import boto3
import pytest

from lakegov.local.athena.server import LocalEndpoint
from lakegov.local.request_stats import STATS_PATH, RequestStats, difference, read_stats
from lakegov.local.runtime import free_port


@pytest.fixture
def endpoint():
    port = free_port()
    server = LocalEndpoint("127.0.0.1", port, RequestStats)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(service, url):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _counts(rows):
    return {(r["service"], r["operation"]): r["count"] for r in rows}


def test_each_protocol_names_its_operations_and_the_answers_are_unchanged(endpoint):
    before = read_stats(endpoint)
    s3 = _client("s3", endpoint)
    s3.create_bucket(Bucket="stats-bucket")
    s3.put_object(Bucket="stats-bucket", Key="a/b.csv", Body=b"x")
    s3.put_object(Bucket="stats-bucket", Key="a/c.csv", Body=b"y")
    listed = s3.list_objects_v2(Bucket="stats-bucket", Prefix="a/")
    ddb = _client("dynamodb", endpoint)
    ddb.create_table(
        TableName="stats-table",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="stats-table", Item={"pk": {"S": "1"}})
    iam = _client("iam", endpoint)  # query protocol: the Action is in a form-encoded body
    iam.create_user(UserName="stats-user")

    rows = difference(read_stats(endpoint), before)
    counts = _counts(rows)
    assert counts[("s3", "PUT bucket")] == 1
    assert counts[("s3", "PUT object")] == 2
    assert counts[("s3", "GET bucket ?encoding-type&list-type&prefix")] == 1
    assert counts[("dynamodb", "CreateTable")] == 1
    assert counts[("dynamodb", "PutItem")] == 1
    assert counts[("iam", "CreateUser")] == 1
    assert sum(counts.values()) == 7  # the stats requests themselves are not counted
    assert all(r["cpu_seconds"] >= 0 and r["wall_seconds"] > 0 for r in rows)
    assert [r["cpu_seconds"] for r in rows] == sorted(
        (r["cpu_seconds"] for r in rows), reverse=True
    )
    # moto still read every body: the objects, the item and the user exist
    assert [o["Key"] for o in listed["Contents"]] == ["a/b.csv", "a/c.csv"]
    assert ddb.get_item(TableName="stats-table", Key={"pk": {"S": "1"}})["Item"]
    assert iam.get_user(UserName="stats-user")["User"]["UserName"] == "stats-user"


def test_cpu_spent_in_a_request_counts_to_its_operation():
    import io
    import time

    def busy(environ, start_response):
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            pass
        start_response("200 OK", [])
        return [b"done"]

    stats = RequestStats(busy)
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=k/20261201/us-east-1/dynamodb/aws4_request",
        "wsgi.input": io.BytesIO(b"{}"),
    }
    assert stats.snapshot()["operations"] == []
    assert b"".join(stats(environ, lambda *_: None)) == b"done"
    (row,) = stats.snapshot()["operations"]
    assert (row["service"], row["operation"], row["count"]) == ("dynamodb", "Query", 1)
    assert row["cpu_seconds"] >= 0.05
    answer: dict[str, str] = {}
    out = stats(
        {"REQUEST_METHOD": "GET", "PATH_INFO": STATS_PATH},
        lambda status, headers: answer.update(status=status),
    )
    assert answer["status"] == "200 OK" and b"Query" in b"".join(out)
