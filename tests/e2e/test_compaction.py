"""Compaction on the embedded runtime: a reader querying the partition through the local
Athena sees the same rows at every step, and a job crashed between steps resumes."""

import json
import time

import pytest
from tests.conftest import ROOT

from lakegov.audit import AuditStore
from lakegov.compaction.service import (
    STATE_KIND,
    STATE_VERSION,
    Compactor,
    PartitionRef,
    resolve_output_key,
)
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

STG = "lakegov_dev_formatted_stg"
DOC = {
    "match": {"prefix": "shop/"},
    "table_name": "shop_sales",
    "compaction": {"enabled": True, "target_file_mb": 1, "min_files": 2},
}


class Crash(Exception):
    pass


def query(rt, sql):
    athena = rt.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": STG}
    )["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        state = execution["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert time.monotonic() < deadline, "query did not finish"
        time.sleep(0.05)
    assert state == "SUCCEEDED", execution["Status"]
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in rows[1:]]


def land(rt, day, files, rows_per_file, start=0):
    raw = rt.outputs["RawBucketName"]
    s3 = rt.client("s3")
    keys = []
    for i in range(start, start + files):
        body = "id,amount\n" + "".join(f"{i * 1000 + r},{r}.5\n" for r in range(rows_per_file))
        key = f"shop/sales/dt={day}/part{i}.csv"
        s3.put_object(Bucket=raw, Key=key, Body=body.encode())
        keys.append(key)
    for key in keys:
        rt.wait_for_event("FileConverted", lambda d, k=key: d["key"] == k, timeout=120)
    rt.wait_idle(timeout=120)
    return keys


def staged_keys(rt, day):
    bucket = rt.outputs["FormattedBucketName"]
    s3 = rt.client("s3")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"formatted_stg/shop_sales/dt={day}/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture(scope="module")
def lake():
    with LocalRuntime(ROOT / "template.yaml", stack_name="compact") as rt:
        config = rt.outputs["ConfigBucketName"]
        rt.client("s3").put_object(
            Bucket=config, Key="datasets/shop.json", Body=json.dumps(DOC).encode()
        )
        rt.wait_for_event(
            "GovernanceApplied", lambda d: d["document"]["key"] == "datasets/shop.json"
        )
        yield rt


def compactor(rt, hook=None):
    audit = AuditStore(rt.outputs["AuditTableName"], rt.client("dynamodb"))
    return Compactor(s3=rt.client("s3"), glue=rt.client("glue"), audit=audit, hook=hook), audit


def partition(rt, day):
    return PartitionRef(rt.outputs["FormattedBucketName"], STG, "shop_sales", f"dt={day}/", (day,))


def test_a_reader_sees_the_same_rows_at_every_step_of_a_compaction(lake):
    # Given six small files converted into one partition (5 rows each)
    land(lake, "2026-11-01", files=6, rows_per_file=5)
    before = staged_keys(lake, "2026-11-01")
    assert len(before) == 6
    total = "SELECT count(*), sum(id) FROM shop_sales WHERE dt = '2026-11-01'"
    expected = query(lake, total)
    assert expected == [["30", str(sum(i * 1000 + r for i in range(6) for r in range(5)))]]
    seen = {}

    def reader(step):
        seen[step] = query(lake, total)

    # When the partition is compacted, a reader querying after each step
    job, audit = compactor(lake, hook=reader)
    result = job.compact(partition(lake, "2026-11-01"))

    # Then every step read the same rows, and one file replaced the six
    assert result.status == "COMPACTED", result
    assert seen == {"written": expected, "switched": expected, "deleted": expected}
    after = staged_keys(lake, "2026-11-01")
    assert after == ["formatted_stg/shop_sales/dt=2026-11-01/_g000001/part-000001-0000.parquet"]
    location = lake.client("glue").get_partition(
        DatabaseName=STG, TableName="shop_sales", PartitionValues=["2026-11-01"]
    )["Partition"]["StorageDescriptor"]["Location"]
    assert location.rstrip("/").endswith("dt=2026-11-01/_g000001")
    # and each FileConverted's output key resolves to the file holding its rows now
    for event in lake.events_of("FileConverted"):
        if event["detail"]["partition_values"] == {"dt": "2026-11-01"}:
            assert resolve_output_key(audit, event["detail"]["output_keys"][0]) == after[0]

    # And a file landing afterwards goes into the new generation, visible at once
    land(lake, "2026-11-01", files=1, rows_per_file=5, start=6)
    assert query(lake, total)[0][0] == "35"
    assert [k for k in staged_keys(lake, "2026-11-01") if "/_g000001/part6-" in k]


def test_a_compaction_crashed_between_steps_leaves_the_partition_readable_and_resumes(lake):
    land(lake, "2026-11-02", files=4, rows_per_file=3)
    total = "SELECT count(*) FROM shop_sales WHERE dt = '2026-11-02'"
    assert query(lake, total) == [["12"]]
    ref = partition(lake, "2026-11-02")

    for crash_at in ("written", "switched"):

        def crash(step, at=crash_at):
            if step == at:
                raise Crash(step)

        job, audit = compactor(lake, hook=crash)
        if crash_at == "switched":  # a second round: two more files, compacted again
            land(lake, "2026-11-02", files=2, rows_per_file=3, start=10)
        with pytest.raises(Crash):
            job.compact(ref)
        # the partition is readable, with every row once, right after the crash
        expected = "12" if crash_at == "written" else "18"
        assert query(lake, total) == [[expected]]
        state = audit.get(STATE_KIND, ref.subject, STATE_VERSION)
        assert state["step"] == crash_at
        # and the next run resumes from the recorded step
        resumed, _ = compactor(lake)
        result = resumed.compact(ref)
        assert result.status == "RESUMED", result
        assert query(lake, total) == [[expected]]
        assert audit.get(STATE_KIND, ref.subject, STATE_VERSION)["step"] == "idle"
    keys = staged_keys(lake, "2026-11-02")
    assert keys == ["formatted_stg/shop_sales/dt=2026-11-02/_g000002/part-000002-0000.parquet"]


def test_the_scheduled_function_compacts_partitions_with_new_files_only(lake):
    # Given a partition with new small files and the compacted one from above untouched
    land(lake, "2026-11-03", files=3, rows_per_file=2)
    fn = lake.function("CompactFunction")
    sub = next(s for s in lake.stack.subscriptions if s.function is fn)
    # When the schedule fires
    invocation = lake.invoke(fn, lake.scheduled_event(sub), source="test")
    assert invocation.ok, invocation.error
    statuses = {p["partition"]: p["status"] for p in invocation.result["partitions"]}
    # Then the partition with new files was compacted and the one without was not visited
    assert statuses[f"{STG}.shop_sales/dt=2026-11-03/"] == "COMPACTED"
    assert f"{STG}.shop_sales/dt=2026-11-02/" not in statuses
    assert query(lake, "SELECT count(*) FROM shop_sales WHERE dt = '2026-11-03'") == [["6"]]


def test_a_partition_is_not_started_without_the_time_to_finish_it(lake):
    # Given a partition with new small files
    land(lake, "2026-11-04", files=4, rows_per_file=2)
    before = staged_keys(lake, "2026-11-04")
    job, _ = compactor(lake)
    subject = f"{STG}.shop_sales/dt=2026-11-04/"
    # When the invocation has less time left than a partition's job may take
    results = {r.partition: r.status for r in job.run_all(remaining_ms=lambda: 60_000)}
    # Then it is deferred, untouched, and the next run with time compacts it
    assert results[subject] == "DEFERRED"
    assert staged_keys(lake, "2026-11-04") == before
    results = {r.partition: r.status for r in job.run_all(remaining_ms=lambda: 900_000)}
    assert results[subject] == "COMPACTED"
    assert len(staged_keys(lake, "2026-11-04")) == 1
    assert query(lake, "SELECT count(*) FROM shop_sales WHERE dt = '2026-11-04'") == [["8"]]
