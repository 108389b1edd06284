"""Governance proven through SQL: a governance upload changes who can query what.

On the embedded runtime: landed files become tables; governance documents uploaded to the
config bucket tag them and grant an analyst role by LF-Tag; queries run through boto3's
Athena client with credentials of roles assumed through the local STS, as a user's would.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from tests.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

ACCOUNT = "123456789012"
ANALYST = f"arn:aws:iam::{ACCOUNT}:role/analyst"
AUDITOR = f"arn:aws:iam::{ACCOUNT}:role/auditor"
OUTSIDER = f"arn:aws:iam::{ACCOUNT}:role/outsider"
SUPPORT = f"arn:aws:iam::{ACCOUNT}:role/support"
DB = "lakegov_dev_formatted_stg"
CUSTOMER_COLUMNS = [
    "cust_id",
    "fname",
    "lname",
    "gender",
    "address",
    "dob",
    "phone",
    "email",
    "partition_dt",
]

GOVERNANCE = {
    "version": 1,
    "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog", "restricted"]}],
    "assignments": [
        {
            "Database": DB,
            "Table": "mwaa_blog_customers",
            "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog"]}],
        },
        {
            "Database": DB,
            "Table": "mwaa_blog_customers",
            "Columns": ["email"],
            "lf_tags": [{"TagKey": "domain", "TagValues": ["restricted"]}],
        },
        {
            "Database": DB,
            "Table": "mwaa_blog_cards",
            "lf_tags": [{"TagKey": "domain", "TagValues": ["restricted"]}],
        },
    ],
    "data_cells_filters": [
        {
            "Name": "women_only",
            "Database": DB,
            "Table": "mwaa_blog_customers",
            "RowFilter": "gender = 'F'",
            "Columns": ["cust_id", "gender"],
        },
        {
            "Name": "ids_of_men",
            "Database": DB,
            "Table": "mwaa_blog_customers",
            "RowFilter": "gender = 'M'",
            "Columns": ["cust_id"],
        },
    ],
    "entries": [
        {
            "role_arn": ANALYST,
            "access_type": "GRANT",
            "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog"]}],
            "table_permissions": ["SELECT", "DESCRIBE"],
        },
        {
            "role_arn": AUDITOR,
            "access_type": "GRANT",
            "named_data_catalog": [
                {"Database": DB, "Table": "mwaa_blog_customers", "DataCellsFilter": "women_only"}
            ],
            "table_permissions": ["SELECT"],
        },
        {
            "role_arn": SUPPORT,
            "access_type": "GRANT",
            "named_data_catalog": [
                {"Database": DB, "Table": "mwaa_blog_customers", "DataCellsFilter": name}
                for name in ("women_only", "ids_of_men")
            ],
            "table_permissions": ["SELECT"],
        },
    ],
}
REVOKE = [
    {
        "role_arn": ANALYST,
        "access_type": "REVOKE",
        "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog"]}],
        "table_permissions": ["SELECT", "DESCRIBE"],
    }
]


@pytest.fixture(scope="module")
def lake(service: Any) -> Any:
    """Customers and cards landed and catalogued; the governance document applied."""
    out = service.outputs
    for name in ("customers.json", "cards.csv"):
        key = f"mwaa/blog/partition_dt=2026-11-20/{name}"
        service.client("s3").put_object(
            Bucket=out["RawBucketName"], Key=key, Body=(ROOT / "examples/data" / name).read_bytes()
        )
    for table in ("mwaa_blog_customers", "mwaa_blog_cards"):
        service.wait_for_event("DatasetRefreshed", lambda d, t=table: d["table"] == t)
    upload(service, "governance/analysts.json", GOVERNANCE)
    return service


def upload(service: Any, key: str, document: Any) -> None:
    service.client("s3").put_object(
        Bucket=service.outputs["ConfigBucketName"], Key=key, Body=json.dumps(document).encode()
    )
    detail = service.wait_for_event("GovernanceApplied", lambda d: d["document"]["key"] == key)[
        "detail"
    ]
    assert detail["failed"] == 0, detail


def athena_as(service: Any, role: str) -> Any:
    """boto3's Athena client with the credentials of a session of ``role`` (local STS)."""
    creds = service.client("sts").assume_role(RoleArn=role, RoleSessionName="e2e")["Credentials"]
    return boto3.client(
        "athena",
        region_name=service.region,
        endpoint_url=service.endpoint_url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def run(service: Any, role: str, sql: str) -> dict[str, Any]:
    """Run ``sql`` as ``role``: {"state", "reason", "columns", "rows"}."""
    athena = athena_as(service, role)
    output = f"s3://{service.outputs['FormattedBucketName']}/_athena_results/e2e/"
    qid = athena.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": DB},
        ResultConfiguration={"OutputLocation": output},
    )["QueryExecutionId"]
    deadline = time.monotonic() + 120
    while True:
        execution = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]
        status = execution["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, f"query still {status['State']}: {sql}"
        time.sleep(0.1)
    answer: dict[str, Any] = {
        "state": status["State"],
        "reason": status.get("StateChangeReason", ""),
        "columns": [],
        "rows": [],
    }
    if status["State"] == "SUCCEEDED":
        result = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]
        answer["columns"] = [c["Name"] for c in result["ResultSetMetadata"]["ColumnInfo"]]
        rows = [[d.get("VarCharValue") for d in r["Data"]] for r in result["Rows"]]
        answer["rows"] = rows[1:] if rows and rows[0] == answer["columns"] else rows
    return answer


def test_governance_decides_who_queries_what(lake: Any) -> None:
    # the analyst reads the table tagged for it, without the column tagged out
    count = run(lake, ANALYST, "SELECT count(*) AS n FROM mwaa_blog_customers")
    assert count["state"] == "SUCCEEDED", count["reason"]
    assert count["rows"] == [["32"]]
    star = run(lake, ANALYST, "SELECT * FROM mwaa_blog_customers")
    assert star["state"] == "SUCCEEDED", star["reason"]
    assert sorted(star["columns"]) == sorted(set(CUSTOMER_COLUMNS) - {"email"})
    assert len(star["rows"]) == 32

    # ... is refused the ungranted column, the other table
    email = run(lake, ANALYST, "SELECT cust_id, email FROM mwaa_blog_customers")
    assert email["state"] == "FAILED"
    assert "AccessDeniedException" in email["reason"] and "email" in email["reason"]
    cards = run(lake, ANALYST, "SELECT count(*) FROM mwaa_blog_cards")
    assert cards["state"] == "FAILED"
    assert "AccessDeniedException" in cards["reason"] and "mwaa_blog_cards" in cards["reason"]

    # another role holds nothing
    outsider = run(lake, OUTSIDER, "SELECT count(*) FROM mwaa_blog_customers")
    assert outsider["state"] == "FAILED" and "AccessDeniedException" in outsider["reason"]

    # SHOW TABLES lists only the tables a role holds a permission on, as Athena does
    assert run(lake, ANALYST, f"SHOW TABLES IN {DB}")["rows"] == [["mwaa_blog_customers"]]
    assert run(lake, OUTSIDER, f"SHOW TABLES IN {DB}")["rows"] == []

    # the auditor's data cells filter: its columns, on its rows
    audited = run(lake, AUDITOR, "SELECT * FROM mwaa_blog_customers")
    assert audited["state"] == "SUCCEEDED", audited["reason"]
    assert sorted(audited["columns"]) == ["cust_id", "gender"]
    assert audited["rows"] and {
        row[audited["columns"].index("gender")] for row in audited["rows"]
    } == {"F"}
    women = run(lake, ANALYST, "SELECT count(*) FROM mwaa_blog_customers WHERE gender = 'F'")
    assert [[str(len(audited["rows"]))]] == women["rows"]

    # two filters add up cell by cell: every id, the gender only on women's rows
    support = run(lake, SUPPORT, "SELECT cust_id, gender FROM mwaa_blog_customers")
    assert support["state"] == "SUCCEEDED", support["reason"]
    genders = run(lake, ANALYST, "SELECT cust_id, gender FROM mwaa_blog_customers")["rows"]
    expected = [[i, g if g == "F" else None] for i, g in genders if g in ("F", "M")]
    assert sorted(support["rows"], key=str) == sorted(expected, key=str)
    assert any(g is None for _, g in support["rows"]) and any(g == "F" for _, g in support["rows"])

    # a revoke upload ends the analyst's access
    upload(lake, "governance/revoke-analysts.json", REVOKE)
    revoked = run(lake, ANALYST, "SELECT count(*) AS n FROM mwaa_blog_customers")
    assert revoked["state"] == "FAILED" and "AccessDeniedException" in revoked["reason"]
    assert run(lake, AUDITOR, "SELECT count(*) FROM mwaa_blog_customers")["state"] == "SUCCEEDED"


def test_lakegov_access_agrees_with_what_queries_do(
    lake: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """For every role and table: `lakegov access --principal` lists the table exactly when
    the role's SELECT * succeeds, with the columns the query returns."""
    from lakegov.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", lake.endpoint_url)
    upload(lake, "governance/analysts-again.json", GOVERNANCE)  # whatever ran before
    where = ["--region", lake.region, "--catalog-id", ACCOUNT]
    for role in (ANALYST, AUDITOR, SUPPORT, OUTSIDER):
        assert main(["access", "--principal", role, "--json", *where]) == 0
        answer = json.loads(capsys.readouterr().out)
        readable = {row["table"]: row for row in answer["tables"]}
        for table in ("mwaa_blog_customers", "mwaa_blog_cards"):
            outcome = run(lake, role, f"SELECT * FROM {table}")
            granted = readable.get(f"{DB}.{table}")
            assert (outcome["state"] == "SUCCEEDED") == (granted is not None), (role, table)
            if granted is not None and granted["columns"] is not None:
                assert sorted(outcome["columns"]) == granted["columns"], (role, table)


def _admin_count(service: Any, table: str, where: str | None) -> int:
    """Rows of ``table`` (matching ``where``), counted by the deployer (an administrator)."""
    athena = service.client("athena")
    sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
    qid = athena.start_query_execution(QueryString=sql, QueryExecutionContext={"Database": DB})[
        "QueryExecutionId"
    ]
    deadline = time.monotonic() + 60
    while athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"] in (
        "QUEUED",
        "RUNNING",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    return int(rows[-1]["Data"][0]["VarCharValue"])


def test_lakegov_access_for_a_table_agrees_with_each_role_s_columns_and_rows(
    lake: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """For each table, `lakegov access TABLE` lists a role exactly when its SELECT * runs,
    with the columns the query returns and as many rows as its row filter keeps."""
    from lakegov.cli import main

    monkeypatch.setenv("AWS_ENDPOINT_URL", lake.endpoint_url)
    upload(lake, "governance/analysts-by-table.json", GOVERNANCE)  # whatever ran before
    where = ["--region", lake.region, "--catalog-id", ACCOUNT]
    checked = 0
    for table in ("mwaa_blog_customers", "mwaa_blog_cards"):
        assert main(["access", f"{DB}.{table}", "--json", *where]) == 0
        readers = {
            row["principal"]: row for row in json.loads(capsys.readouterr().out)["principals"]
        }
        for role in (ANALYST, AUDITOR, SUPPORT, OUTSIDER):
            outcome = run(lake, role, f"SELECT * FROM {table}")
            granted = readers.get(role)
            assert (outcome["state"] == "SUCCEEDED") == (granted is not None), (role, table)
            if granted is None:
                assert "AccessDeniedException" in outcome["reason"], (role, table)
                continue
            if granted["columns"] is not None:
                assert sorted(outcome["columns"]) == granted["columns"], (role, table)
            expected = _admin_count(lake, table, granted["row_filter"])
            assert len(outcome["rows"]) == expected, (role, table, granted["row_filter"])
            checked += 1
    assert checked == 3  # the analyst, the auditor and support read customers


def test_lakegov_access_reads_the_runtime_from_its_outputs_file(
    lake: Any, tmp_path: Any, capsys: Any
) -> None:
    """`lakegov access --outputs FILE`, as `lakegov query` and `lakegov status` take it."""
    from lakegov.cli import main

    outputs = tmp_path / "outputs.json"
    lake.write_outputs(outputs)
    upload(lake, "governance/analysts-access.json", GOVERNANCE)  # whatever ran before
    table = f"{DB}.mwaa_blog_customers"
    assert main(["access", table, "--outputs", str(outputs), "--json"]) == 0
    readers = {row["principal"] for row in json.loads(capsys.readouterr().out)["principals"]}
    assert ANALYST in readers and OUTSIDER not in readers


def test_lakegov_query_as_a_role_is_granted_or_refused(
    lake: Any, tmp_path: Any, capsys: Any
) -> None:
    """The same through `lakegov query --as ROLE`: rows for the granted role, exit 1 and
    AccessDeniedException for the other."""
    from lakegov.cli import main

    outputs = tmp_path / "outputs.json"
    lake.write_outputs(outputs)
    upload(lake, "governance/analysts-query.json", GOVERNANCE)  # whatever ran before
    where = ["--outputs", str(outputs), "--database", DB, "--json"]
    sql = "SELECT count(*) AS n FROM mwaa_blog_customers"
    assert main(["query", sql, "--as", ANALYST, *where]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [["32"]]
    assert main(["query", sql, "--as", OUTSIDER, *where]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert refused["state"] == "FAILED" and "AccessDeniedException" in refused["reason"]


def test_an_ungranted_column_is_denied_by_name_however_the_query_spells_it(lake: Any) -> None:
    """Aliased to its own name, or qualified next to a join that has a column of that
    name, the hidden column is refused naming it (not a COLUMN_NOT_FOUND); an output alias
    of that name is still just an alias."""
    upload(lake, "governance/analysts-spelling.json", GOVERNANCE)  # whatever ran before
    for sql in (
        "SELECT email AS email FROM mwaa_blog_customers",
        "WITH e AS (SELECT fname AS email FROM mwaa_blog_customers) "
        "SELECT c.email FROM mwaa_blog_customers c JOIN e ON c.fname = e.email",
    ):
        outcome = run(lake, ANALYST, sql)
        assert outcome["state"] == "FAILED", sql
        assert "AccessDeniedException" in outcome["reason"] and "email" in outcome["reason"], (
            sql,
            outcome["reason"],
        )
    renamed = run(lake, ANALYST, "SELECT cust_id AS email FROM mwaa_blog_customers ORDER BY email")
    assert renamed["state"] == "SUCCEEDED", renamed["reason"]
    assert renamed["columns"] == ["email"] and len(renamed["rows"]) == 32
