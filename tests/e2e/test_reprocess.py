"""`lakegov reprocess` and `lakegov reapply` on the embedded runtime: the rerun state
machine's Distributed Map runs through the runtime's functions, each object version once."""

import json
import time
from collections import Counter

import pytest
from tests.conftest import ROOT

from lakegov.audit import AuditStore
from lakegov.cli import main
from lakegov.local.runtime import LocalRuntime

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("runtime")]

BULK = 1000


def pipeline_off(rt, rule_part):
    """Files land while the pipeline is off: the rule keeps its pattern, loses its target."""
    events = rt.client("events")
    rule = next(r["Name"] for r in events.list_rules()["Rules"] if rule_part in r["Name"])
    targets = events.list_targets_by_rule(Rule=rule)["Targets"]
    events.remove_targets(Rule=rule, Ids=[t["Id"] for t in targets])
    return events, rule, targets


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    with LocalRuntime(ROOT / "template.yaml", stack_name="rerun") as rt:
        outputs = tmp_path_factory.mktemp("rerun") / "outputs.json"
        rt.write_outputs(outputs)
        rt.outputs_file = outputs
        yield rt


def cli(rt, capsys, *args):
    capsys.readouterr()
    code = main([*args, "--outputs", str(rt.outputs_file), "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def query(rt, sql):
    athena = rt.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql, QueryExecutionContext={"Database": "lakegov_dev_formatted_stg"}
    )["QueryExecutionId"]
    deadline = time.monotonic() + 60
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert execution["Status"]["State"] == "SUCCEEDED", execution["Status"]
    rows = athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
    return [[d.get("VarCharValue") for d in r["Data"]] for r in rows[1:]]


def converted_keys(rt, prefix):
    return Counter(
        e["detail"]["key"]
        for e in rt.events_of("FileConverted")
        if e["detail"]["key"].startswith(prefix)
    )


@pytest.mark.slow
@pytest.mark.timeout(3600)  # about 0.3 s a file on a shared 2-core machine, downstream included
def test_reprocess_converts_each_stored_object_once_and_a_second_run_none(lake, capsys):
    # Given 1,000 small objects of one table (one of them not convertible) landed while the
    # pipeline was off
    config = lake.outputs["ConfigBucketName"]
    doc = {"match": {"prefix": "bulk/orders/"}, "table_name": "bulk_orders"}
    lake.client("s3").put_object(
        Bucket=config, Key="datasets/bulk_orders.json", Body=json.dumps(doc).encode()
    )
    lake.wait_for_event(
        "GovernanceApplied", lambda d: d["document"]["key"] == "datasets/bulk_orders.json"
    )
    events, rule, targets = pipeline_off(lake, "RawObjectCreated")
    raw = lake.outputs["RawBucketName"]
    s3 = lake.client("s3")
    for i in range(BULK - 1):
        key = f"bulk/orders/dt=2026-11-{i % 5 + 1:02d}/o{i}.csv"
        s3.put_object(Bucket=raw, Key=key, Body=f"id,amount\n{i},{i}.5\n".encode())
    s3.put_object(Bucket=raw, Key="bulk/orders/dt=2026-11-01/archive.zip", Body=b"PK\x03\x04")
    events.put_targets(Rule=rule, Targets=targets)

    # When they are reprocessed
    code, summary, err = cli(lake, capsys, "reprocess", f"s3://{raw}/bulk/")

    # Then each was converted (or rejected) once, and the progress went to stderr
    assert code == 0, summary
    assert summary["status"] == "SUCCEEDED"
    assert (summary["converted"], summary["rejected"], summary["skipped"]) == (BULK - 1, 1, 0)
    assert summary["failed"] == 0
    assert f"reprocess: {BULK}/{BULK}" in err
    # the catalog, fan-in and mesh functions take their time over 999 FileConverted events
    lake.wait_idle(timeout=1200)
    converted = converted_keys(lake, "bulk/")
    assert len(converted) == BULK - 1 and set(converted.values()) == {1}
    rejected = [e for e in lake.events_of("FileRejected") if e["detail"]["key"].startswith("bulk/")]
    assert len(rejected) == 1

    # And a second run converts none
    code, again, _ = cli(lake, capsys, "reprocess", f"s3://{raw}/bulk/")
    assert code == 0
    assert (again["converted"], again["rejected"], again["skipped"]) == (0, 0, BULK)
    lake.wait_idle(timeout=60)
    assert sum(converted_keys(lake, "bulk/").values()) == BULK - 1

    # And the table holds every row once
    assert query(lake, "SELECT count(*), count(DISTINCT id) FROM bulk_orders") == [
        [str(BULK - 1), str(BULK - 1)]
    ]


def test_force_dry_run_and_since(lake, capsys):
    raw = lake.outputs["RawBucketName"]
    s3 = lake.client("s3")
    # Given three files converted on arrival
    for i in range(3):
        s3.put_object(Bucket=raw, Key=f"small/items/i{i}.csv", Body=f"id\n{i}\n".encode())
    for i in range(3):
        lake.wait_for_event("FileConverted", lambda d, k=f"small/items/i{i}.csv": d["key"] == k)
    lake.wait_idle(timeout=60)

    # a dry run says all three would be skipped, and --force that all would be converted
    code, dry, _ = cli(lake, capsys, "reprocess", f"s3://{raw}/small/", "--dry-run")
    assert (code, dry["would_convert"], dry["would_skip"]) == (0, 0, 3)
    code, dry, _ = cli(lake, capsys, "reprocess", f"s3://{raw}/small/", "--dry-run", "--force")
    assert (dry["would_convert"], dry["would_skip"]) == (3, 0)
    assert sum(converted_keys(lake, "small/").values()) == 3  # a dry run changes nothing

    # reprocess skips them; --since in the future skips them too; --force converts them again
    code, run, _ = cli(lake, capsys, "reprocess", f"s3://{raw}/small/")
    assert (run["converted"], run["skipped"]) == (0, 3)
    code, run, _ = cli(
        lake, capsys, "reprocess", f"s3://{raw}/small/", "--force", "--since", "2999-01-01"
    )
    assert (run["converted"], run["skipped"]) == (0, 3)
    code, run, _ = cli(lake, capsys, "reprocess", f"s3://{raw}/small/", "--force")
    assert code == 0
    assert (run["converted"], run["skipped"]) == (3, 0)
    lake.wait_idle(timeout=60)
    assert converted_keys(lake, "small/") == {f"small/items/i{i}.csv": 2 for i in range(3)}
    # converted again in place: the current version stays current, its output kept
    staged = lake.client("s3").list_objects_v2(
        Bucket=lake.outputs["FormattedBucketName"], Prefix="formatted_stg/small_items_i"
    )
    assert len(staged.get("Contents", [])) == 3
    assert query(lake, "SELECT count(*) FROM small_items_i1") == [["1"]]


def test_a_prefix_outside_the_raw_bucket_is_refused(lake, capsys):
    code = main(["reprocess", "s3://someone-elses-bucket/x/", "--outputs", str(lake.outputs_file)])
    assert code == 1
    assert "not the deployment's raw bucket" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_reapply_runs_each_stored_document_once_per_run(lake, capsys):
    # Given 1,000 dataset documents stored while the config function was not listening,
    # one of them invalid
    events, rule, targets = pipeline_off(lake, "ConfigFunction")
    config = lake.outputs["ConfigBucketName"]
    s3 = lake.client("s3")
    for i in range(BULK - 1):
        doc = {"match": {"prefix": f"area{i}/"}, "bad_rows": "reject"}
        s3.put_object(Bucket=config, Key=f"datasets/bulk/d{i}.json", Body=json.dumps(doc).encode())
    s3.put_object(Bucket=config, Key="datasets/bulk/bad.json", Body=b'{"match": {}}')
    events.put_targets(Rule=rule, Targets=targets)

    # When they are reapplied, twice
    code, first, _ = cli(lake, capsys, "reapply", "datasets/bulk/")
    code2, second, _ = cli(lake, capsys, "reapply", "datasets/bulk/")
    # a refused document is an outcome of the run, not a failure of it
    assert (code, code2) == (0, 0)

    # Then each run applied each valid document once and refused the invalid one
    for run in (first, second):
        assert run["status"] == "SUCCEEDED", run
        assert (run["converted"], run["rejected"], run["failed"]) == (BULK - 1, 1, 0)
    lake.wait_idle(timeout=600)
    applied = Counter(
        e["detail"]["document"]["key"]
        for e in lake.events_of("GovernanceApplied")
        if e["detail"]["document"]["key"].startswith("datasets/bulk/")
    )
    assert len(applied) == BULK - 1 and set(applied.values()) == {2}
    audit = AuditStore(lake.outputs["AuditTableName"], lake.client("dynamodb"))
    item = audit.versions("metadata", f"s3://{config}/datasets/bulk/d7.json")[0]
    statuses = [h["status"] for h in item["history"]]
    assert statuses.count("APPLIED") == 2
    result = json.loads(
        s3.get_object(Bucket=config, Key="results/datasets/bulk/bad.json.result.json")[
            "Body"
        ].read()
    )
    assert result["status"] == "REJECTED"


def test_reapply_refuses_a_prefix_outside_the_metadata_prefixes(lake, capsys):
    code = main(["reapply", "results/", "--outputs", str(lake.outputs_file)])
    assert code == 1
    assert "reapply takes a config-bucket prefix" in capsys.readouterr().err
