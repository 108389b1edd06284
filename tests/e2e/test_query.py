"""Athena SQL on the embedded runtime: what lands in the lake is read back the way users read it."""

import json
import os
import shutil
import subprocess
import time

import pytest
from tests.conftest import ROOT

from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

STG = "lakegov_dev_formatted_stg"
THRESHOLD = 4096  # bytes: files above it go through Athena in this module

ORDERS_20 = b"order_id,customer_id,amount,ordered_at\n1,C1,10.5,2026-11-20 08:00:00\n2,C2,4.25,2026-11-20 09:30:00\n3,C1,1.0,2026-11-20 10:00:00\n"
ORDERS_21 = b"order_id,customer_id,amount,ordered_at\n4,C2,7.75,2026-11-21 11:00:00\n"
CUSTOMERS = b"customer_id,name,zip\nC1,Ada,02134\nC2,Grace,10001\n"


@pytest.fixture(scope="module")
def lake():
    with LocalRuntime(
        ROOT / "template.yaml",
        stack_name="query",
        parameters={"AthenaThresholdBytes": str(THRESHOLD)},
    ) as rt:
        raw = rt.outputs["RawBucketName"]
        s3 = rt.client("s3")
        landed = {
            "shop/order_dt=2026-11-20/orders.csv": ORDERS_20,
            "shop/order_dt=2026-11-21/orders.csv": ORDERS_21,
            "shop/customers.csv": CUSTOMERS,
        }
        for key, body in landed.items():
            s3.put_object(Bucket=raw, Key=key, Body=body)
        for table in ("shop_orders", "shop_customers"):
            rt.wait_for_event("DatasetRefreshed", lambda d, t=table: d["table"] == t)
        rt.wait_idle(timeout=60)
        yield rt


def run(rt, sql, *, database=STG, workgroup="query-convert", client=None):
    """(state, execution, rows as lists of strings, column types) of one query."""
    athena = client or rt.client("athena")
    kwargs = {"QueryExecutionContext": {"Database": database}} if database else {}
    query_id = athena.start_query_execution(QueryString=sql, WorkGroup=workgroup, **kwargs)[
        "QueryExecutionId"
    ]
    deadline = time.monotonic() + 60
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        state = execution["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if state != "SUCCEEDED":
        return state, execution, [], []
    rows, types, token = [], [], None
    while True:
        page = athena.get_query_results(
            QueryExecutionId=query_id, MaxResults=2, **({"NextToken": token} if token else {})
        )
        types = [c["Type"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        rows += [[d.get("VarCharValue") for d in r["Data"]] for r in page["ResultSet"]["Rows"]]
        token = page.get("NextToken")
        if not token:
            break
    return state, execution, rows, types


def test_a_landed_file_is_queried_with_its_rows_and_types(lake):
    state, execution, rows, types = run(
        lake, "SELECT * FROM shop_orders WHERE order_dt = '2026-11-20' ORDER BY order_id"
    )
    assert state == "SUCCEEDED", execution["Status"]
    assert rows[0] == ["order_id", "customer_id", "amount", "ordered_at", "order_dt"]
    assert rows[1:] == [
        ["1", "C1", "10.5", "2026-11-20 08:00:00.000", "2026-11-20"],
        ["2", "C2", "4.25", "2026-11-20 09:30:00.000", "2026-11-20"],
        ["3", "C1", "1.0", "2026-11-20 10:00:00.000", "2026-11-20"],
    ]
    assert types == ["bigint", "varchar", "double", "timestamp", "varchar"]
    assert execution["Statistics"]["DataScannedInBytes"] > 0
    # the results are where Athena puts them: <output location>/<id>.csv (+ .metadata)
    location = execution["ResultConfiguration"]["OutputLocation"]
    bucket, key = location[5:].split("/", 1)
    assert key.endswith(f"{execution['QueryExecutionId']}.csv")
    body = lake.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    assert body.splitlines()[0] == '"order_id","customer_id","amount","ordered_at","order_dt"'
    assert body.splitlines()[1] == '"1","C1","10.5","2026-11-20 08:00:00.000","2026-11-20"'
    lake.client("s3").head_object(Bucket=bucket, Key=f"{key}.metadata")


def test_leading_zeros_stay_text_and_a_partition_filter_reads_one_partition(lake):
    _, _, rows, types = run(lake, "SELECT zip FROM shop_customers ORDER BY zip")
    assert rows[1:] == [["02134"], ["10001"]] and types == ["varchar"]
    _, _, rows, _ = run(lake, "SELECT order_id FROM shop_orders WHERE order_dt = '2026-11-21'")
    assert rows[1:] == [["4"]]
    _, _, rows, _ = run(lake, "SELECT count(*) FROM shop_orders WHERE order_dt > '2026-12-01'")
    assert rows == [["_col0"], ["0"]]


def test_join_and_aggregate(lake):
    state, execution, rows, types = run(
        lake,
        f"""SELECT c.name, count(*) AS orders, sum(o.amount) AS total
            FROM {STG}.shop_orders o JOIN {STG}.shop_customers c ON o.customer_id = c.customer_id
            GROUP BY c.name ORDER BY c.name""",
        database=None,
    )
    assert state == "SUCCEEDED", execution["Status"]
    assert rows == [["name", "orders", "total"], ["Ada", "2", "11.5"], ["Grace", "2", "12.0"]]
    assert types == ["varchar", "bigint", "double"]


def test_trino_functions_are_translated(lake):
    _, execution, rows, _ = run(
        lake,
        "SELECT date_format(max(ordered_at), '%Y-%m-%d') AS last_day, "
        "count_if(amount > 5) AS big, approx_distinct(customer_id) AS customers "
        "FROM shop_orders",
    )
    assert rows[1:] == [["2026-11-21", "2", "2"]], execution["Status"]


def test_show_and_describe_answer_from_the_catalog(lake):
    _, _, rows, _ = run(lake, "SHOW DATABASES")
    assert [STG] in rows and ["lakegov_dev_formatted"] in rows
    _, _, rows, _ = run(lake, "SHOW TABLES")
    assert ["shop_orders"] in rows and ["shop_customers"] in rows
    _, _, rows, _ = run(lake, "SHOW TABLES 'shop_c*'")
    assert rows == [["shop_customers"]]
    _, _, rows, _ = run(lake, "SHOW COLUMNS IN shop_customers")
    assert rows == [["customer_id"], ["name"], ["zip"]]
    _, _, rows, _ = run(lake, "SHOW PARTITIONS shop_orders")
    assert rows == [["order_dt=2026-11-20"], ["order_dt=2026-11-21"]]
    _, _, rows, _ = run(lake, f"DESCRIBE {STG}.shop_orders")
    assert rows[:4] == [
        ["order_id", "bigint", ""],
        ["customer_id", "string", ""],
        ["amount", "double", ""],
        ["ordered_at", "timestamp", ""],
    ]
    assert ["order_dt", "string", ""] in rows[4:]


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("INSERT INTO shop_orders VALUES (1)", "NOT_SUPPORTED"),
        ("SELECT * FROM shop_nothing", "TABLE_NOT_FOUND"),
        ("SELECT * FROM nowhere.shop_orders", "SCHEMA_NOT_FOUND"),
        ("SELECT no_such_column FROM shop_orders", "COLUMN_NOT_FOUND"),
        ("SELECT no_such_function(order_id) FROM shop_orders", "FUNCTION_NOT_FOUND"),
        ("SELEC 1", "NOT_SUPPORTED"),
        ("SELECT FROM WHERE", "SYNTAX_ERROR"),
        (
            "CREATE EXTERNAL TABLE orc_t (a int) ROW FORMAT SERDE "
            "'org.apache.hadoop.hive.ql.io.orc.OrcSerde' STORED AS INPUTFORMAT "
            "'org.apache.hadoop.hive.ql.io.orc.OrcInputFormat' OUTPUTFORMAT "
            "'org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat' LOCATION 's3://x/orc/'",
            "NOT_SUPPORTED",
        ),
    ],
)
def test_what_the_local_athena_cannot_run_fails_clearly(lake, sql, error):
    state, execution, _, _ = run(lake, sql)
    status = execution["Status"]
    assert state == "FAILED"
    assert status["StateChangeReason"].startswith(error)
    assert status["AthenaError"]["ErrorCategory"] == 2
    assert status["AthenaError"]["ErrorMessage"] == status["StateChangeReason"]


def test_results_page_and_refuse_more_than_a_thousand_rows_a_page(lake):
    athena = lake.client("athena")
    _, execution, rows, _ = run(lake, "SELECT * FROM UNNEST(sequence(1, 2500)) AS t(n)")
    query_id = execution["QueryExecutionId"]
    assert len(rows) == 2501 and rows[-1] == ["2500"]
    first = athena.get_query_results(QueryExecutionId=query_id)
    assert len(first["ResultSet"]["Rows"]) == 1000 and "NextToken" in first
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_results(QueryExecutionId=query_id, MaxResults=1001)


def test_state_changes_reach_the_default_bus_as_athena_puts_them(lake):
    sqs, events = lake.client("sqs"), lake.client("events")
    url = sqs.create_queue(QueueName="athena-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="athena-events",
        EventPattern=json.dumps(
            {"source": ["aws.athena"], "detail-type": ["Athena Query State Change"]}
        ),
    )
    events.put_targets(Rule="athena-events", Targets=[{"Id": "q", "Arn": arn}])
    _, execution, _, _ = run(lake, "SELECT 1", workgroup="primary")
    query_id = execution["QueryExecutionId"]
    seen = []
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            detail = json.loads(message["Body"])["detail"]
            if detail["queryExecutionId"] == query_id:
                seen.append((detail.get("previousState"), detail["currentState"]))
            assert detail["workgroupName"] in ("primary", "query-convert")
    assert seen == [(None, "QUEUED"), ("QUEUED", "RUNNING"), ("RUNNING", "SUCCEEDED")]


def test_a_big_file_is_converted_by_athena_with_its_types_and_queried(lake):
    raw = lake.outputs["RawBucketName"]
    lines = ["id,amount,code,day"]
    lines += [f"{n},{n * 1.5},{n:05d},2026-11-{1 + n % 28:02d}" for n in range(1, 4000)]
    lines.append("4000,not-a-number,04000,2026-11-02")  # beyond the 64 KiB head
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 64 * 1024 > THRESHOLD
    key = "shop/pay_dt=2026-11-22/payments.csv"
    lake.client("s3").put_object(Bucket=raw, Key=key, Body=body)
    converted = lake.wait_for_event("FileConverted", lambda d: d["key"] == key, timeout=60)[
        "detail"
    ]
    assert converted["engine"] == "athena"
    assert converted["rows"] == 4000 and converted["values_nulled"] == 1
    assert converted["bad_rows"] == 0  # nothing set aside: the value is NULL in its row
    lake.wait_for_event("DatasetRefreshed", lambda d: d["table"] == "shop_payments", timeout=60)
    state, execution, rows, types = run(
        lake,
        "SELECT count(*) AS n, count(amount) AS amounts, min(code) AS code, max(day) AS day "
        "FROM shop_payments WHERE pay_dt = '2026-11-22'",
    )
    assert state == "SUCCEEDED", execution["Status"]
    assert rows[1] == ["4000", "3999", "00001", "2026-11-28"]
    assert types == ["bigint", "bigint", "varchar", "date"]
    _, _, rows, _ = run(lake, "DESCRIBE shop_payments")
    assert rows[:4] == [
        ["id", "bigint", ""],
        ["amount", "double", ""],
        ["code", "string", ""],
        ["day", "date", ""],
    ]
    # the temporary table is gone once the conversion is done
    _, _, rows, _ = run(lake, "SHOW TABLES IN lakegov_dev_athena_tmp")
    assert rows == []


def test_pyathena_reads_through_the_local_endpoint(lake):
    pyathena = pytest.importorskip("pyathena")
    out = lake.outputs
    connection = pyathena.connect(
        s3_staging_dir=f"s3://{out['FormattedBucketName']}/_athena_results/pyathena/",
        region_name=lake.region,
        endpoint_url=lake.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        schema_name=STG,
    )
    cursor = connection.cursor()
    cursor.execute("SELECT order_id, amount, ordered_at FROM shop_orders ORDER BY order_id")
    fetched = cursor.fetchall()
    assert [r[0] for r in fetched] == [1, 2, 3, 4]
    assert fetched[0][1] == 10.5 and fetched[0][2].year == 2026
    assert [d[0] for d in cursor.description] == ["order_id", "amount", "ordered_at"]


@pytest.mark.parametrize("ctas_approach", [False, True])
def test_awswrangler_reads_a_query_into_a_dataframe(lake, ctas_approach):
    wr = pytest.importorskip("awswrangler")
    import boto3

    out = lake.outputs
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=lake.region
    )
    wr.config.athena_endpoint_url = lake.endpoint_url
    wr.config.s3_endpoint_url = lake.endpoint_url
    wr.config.glue_endpoint_url = lake.endpoint_url
    wr.config.sts_endpoint_url = lake.endpoint_url
    try:
        frame = wr.athena.read_sql_query(
            "SELECT customer_id, sum(amount) AS total FROM shop_orders GROUP BY 1 ORDER BY 1",
            database=STG,
            ctas_approach=ctas_approach,
            s3_output=f"s3://{out['FormattedBucketName']}/_athena_results/wrangler/",
            boto3_session=session,
        )
    finally:
        wr.config.reset()
    assert sorted(frame.to_dict("records"), key=lambda r: r["customer_id"]) == [
        {"customer_id": "C1", "total": 11.5},
        {"customer_id": "C2", "total": 12.0},
    ]
    # the CTAS approach's temporary table is gone again (awswrangler drops it)
    _, _, rows, _ = run(lake, "SHOW TABLES 'temp_table_*'")
    assert rows == []


def test_create_table_as_select_writes_parquet_and_registers_the_table(lake):
    location = f"s3://{lake.outputs['FormattedBucketName']}/ctas/order_totals/"
    state, execution, _, _ = run(
        lake,
        "CREATE TABLE order_totals WITH (external_location = "
        f"'{location}', format = 'PARQUET') AS "
        "SELECT customer_id, sum(amount) AS total FROM shop_orders GROUP BY 1",
    )
    assert state == "SUCCEEDED", execution["Status"]
    assert execution["Statistics"]["DataManifestLocation"].endswith("-manifest.csv")
    _, _, rows, types = run(lake, "SELECT * FROM order_totals ORDER BY customer_id")
    assert rows[1:] == [["C1", "11.5"], ["C2", "12.0"]] and types == ["varchar", "double"]
    state, execution, _, _ = run(lake, "CREATE TABLE order_totals AS SELECT 1 AS x")
    assert (
        state == "FAILED" and "AlreadyExistsException" in execution["Status"]["StateChangeReason"]
    )
    state, execution, _, _ = run(
        lake,
        "CREATE TABLE by_day WITH (partitioned_by = ARRAY['order_dt']) AS SELECT * FROM shop_orders",
    )
    assert state == "FAILED"
    assert execution["Status"]["StateChangeReason"].startswith("NOT_SUPPORTED")
    assert "partitioned_by" in execution["Status"]["StateChangeReason"]
    assert run(lake, "DROP TABLE order_totals")[0] == "SUCCEEDED"


def test_the_aws_cli_starts_a_query(lake):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": lake.region,
    }
    cli = [shutil.which("aws") or pytest.skip("the AWS CLI is not installed")]
    started = subprocess.run(
        [
            *cli,
            "athena",
            "start-query-execution",
            "--endpoint-url",
            lake.endpoint_url,
            "--work-group",
            "query-convert",
            "--query-string",
            f"SELECT count(*) FROM {STG}.shop_orders",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    query_id = json.loads(started.stdout)["QueryExecutionId"]
    athena = lake.client("athena")
    deadline = time.monotonic() + 30
    while (
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"]
        in ("QUEUED", "RUNNING")
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    results = subprocess.run(
        [
            *cli,
            "athena",
            "get-query-results",
            "--endpoint-url",
            lake.endpoint_url,
            "--query-execution-id",
            query_id,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    rows = json.loads(results.stdout)["ResultSet"]["Rows"]
    assert rows[1]["Data"][0]["VarCharValue"] == "4"


def test_lakegov_query_prints_a_table_and_fails_in_one_line(lake, tmp_path, capsys):
    from lakegov.cli import main

    outputs = tmp_path / "outputs.json"
    lake.write_outputs(outputs)
    sql = "SELECT customer_id, count(*) AS orders, sum(amount) AS total FROM shop_orders GROUP BY 1 ORDER BY 1"
    assert main(["query", sql, "--database", STG, "--outputs", str(outputs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["customer_id", "orders", "total"]
    assert lines[2].split() == ["C1", "2", "11.5"] and lines[3].split() == ["C2", "2", "12.0"]
    assert lines[4].startswith("(2 rows, ") and "scanned" in lines[4]

    assert main(["query", sql, "--database", STG, "--outputs", str(outputs), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["state"] == "SUCCEEDED" and answer["rows"] == [
        ["C1", "2", "11.5"],
        ["C2", "2", "12.0"],
    ]
    assert answer["columns"][2] == {"name": "total", "type": "double"}

    # a role granted nothing by Lake Formation is refused, in one line, exit 1
    outsider = f"arn:aws:iam::{lake.account}:role/outsider"
    code = main(["query", sql, "--database", STG, "--outputs", str(outputs), "--as", outsider])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("lakegov: error: query FAILED: AccessDeniedException")
    assert "outsider" in line and "shop_orders" in line


def _payments(rows: int) -> bytes:
    lines = ["id,amount,code,day"]
    lines += [f"{n},{n * 1.5},{n:05d},2026-11-{1 + n % 28:02d}" for n in range(1, rows + 1)]
    return ("\n".join(lines) + "\n").encode()


def test_a_new_version_through_athena_replaces_the_old_rows_and_a_delete_removes_them(lake):
    raw = lake.outputs["RawBucketName"]
    key = "shop/pay_dt=2026-11-23/payments.csv"
    count = "SELECT count(*) FROM shop_payments WHERE pay_dt = '2026-11-23'"
    s3 = lake.client("s3")
    for rows in (3000, 2500):
        s3.put_object(Bucket=raw, Key=key, Body=_payments(rows))
        converted = lake.wait_for_event(
            "FileConverted", lambda d, n=rows: d["key"] == key and d["rows"] == n, timeout=60
        )["detail"]
        assert converted["engine"] == "athena"
        lake.wait_idle(timeout=60)
        _, execution, result, _ = run(lake, count)
        assert result == [["_col0"], [str(rows)]], execution["Status"]  # not 3000 + 2500

    # a delete leaves a delete marker (the raw bucket is versioned): S3's "Object Deleted"
    # reaches the conversion, which removes the output
    s3.delete_object(Bucket=raw, Key=key)
    lake.wait_idle(timeout=60)
    _, _, result, _ = run(lake, count)
    assert result == [["_col0"], ["0"]]
    left = s3.list_objects_v2(
        Bucket=lake.outputs["FormattedBucketName"],
        Prefix="formatted_stg/shop_payments/pay_dt=2026-11-23/",
    )
    assert left["KeyCount"] == 0


def test_integer_division_truncates_as_in_athena(lake):
    # Trino divides integers as integers (7 / 2 = 3, -7 / 2 = -3); DuckDB's / alone gives 3.5
    state, _, rows, _ = run(
        lake,
        "SELECT 7 / 2, -7 / 2, 7.0 / 2, max(order_id) / 2, sum(amount) / 2 "
        "FROM shop_orders WHERE order_dt = '2026-11-20'",
    )
    assert state == "SUCCEEDED"
    assert rows[1] == ["3", "-3", "3.5", "1", "7.875"]


def test_date_add_on_a_date_is_a_date_as_in_athena(lake):
    # Trino: date_add('day', 1, DATE '2026-01-31') is the date 2026-02-01 (DuckDB's
    # date + INTERVAL alone is a timestamp); time units keep the timestamp
    state, _, rows, types = run(
        lake,
        "SELECT date_add('day', 1, DATE '2026-01-31'), date_add('month', 1, DATE '2026-01-31'), "
        "date_add('hour', 1, TIMESTAMP '2026-01-31 23:00:00')",
    )
    assert state == "SUCCEEDED"
    assert rows[1][:2] == ["2026-02-01", "2026-02-28"]
    assert rows[1][2].startswith("2026-02-01 00:00:00")
    assert types[:2] == ["date", "date"]
