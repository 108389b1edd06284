"""``lakegov demo``: the service's main job, end to end, on the embedded runtime.

Each step does what a user would do (upload a file or a document with boto3 against the
local endpoint) and prints what the service did in response, read back from the events,
the buckets, the catalog and the audit table. Any step that does not see the expected
outcome fails the demo (exit 1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakegov.local.runtime import LocalRuntime, find_template
from lakegov.observability import logger

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"


class DemoFailed(Exception):
    pass


@dataclass
class Demo:
    rt: LocalRuntime
    verbose: bool = False
    step_no: int = 0
    domains: dict[str, Any] = field(default_factory=dict)

    @property
    def out(self) -> dict[str, str]:
        return self.rt.outputs

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n== {self.step_no}. {title}", flush=True)

    def say(self, text: str) -> None:
        print(f"   {text}", flush=True)

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise DemoFailed(message)

    def upload(self, bucket: str, key: str, body: bytes) -> None:
        self.rt.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        self.say(f"uploaded s3://{bucket}/{key} ({len(body)} bytes)")

    def wait(
        self, detail_type: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 120.0
    ) -> dict[str, Any]:
        try:
            return self.rt.wait_for_event(detail_type, predicate, timeout=timeout)["detail"]
        except TimeoutError as exc:
            failures = [i for i in self.rt.invocations if not i.ok][-3:]
            hint = "; ".join(f"{i.function}: {i.error}" for i in failures)
            raise DemoFailed(f"{exc}{' - recent failures: ' + hint if hint else ''}") from exc


def key_is(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: bool(detail.get("key") == key)


def staging_refresh_of(table: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: bool(detail.get("table") == table and detail.get("mode") != "product")


def _example(path: str) -> bytes:
    return (EXAMPLES / path).read_bytes()


def step_stack(demo: Demo) -> None:
    demo.step("The embedded stack (template.yaml on moto, the handlers in this process)")
    assert demo.rt.stack is not None
    for name, value in demo.out.items():
        demo.say(f"{name:<22} {value}")
    wiring = sorted(
        {
            f"{s.function.logical_id} <- {s.source}:{s.event_name}"
            for s in demo.rt.stack.subscriptions
        }
    )
    for line in wiring:
        demo.say(f"wired  {line}")


def step_convert(demo: Demo) -> None:
    demo.step("Landed files become Parquet (raw bucket -> convert -> formatted_stg/)")
    raw = demo.out["RawBucketName"]
    for name, key in (
        ("data/customers.json", "mwaa/blog/partition_dt=2026-11-20/customers.json"),
        ("data/cards.csv", "mwaa/blog/partition_dt=2026-11-20/cards.csv"),
    ):
        demo.upload(raw, key, _example(name))
        detail = demo.wait("FileConverted", key_is(key))
        demo.say(
            f"FileConverted: table {detail['table']}, partition {detail['partition_values']}, "
            f"{detail['rows']} rows, {len(detail['columns'])} columns"
        )
        demo.say(f"  -> s3://{detail['output_bucket']}/{detail['output_keys'][0]}")


def step_reject(demo: Demo) -> None:
    demo.step("A bad row is set aside; a file of bad rows is quarantined, never retried forever")
    raw = demo.out["RawBucketName"]
    key = "mwaa/blog/partition_dt=2026-11-20/payments.csv"
    rows = [f"{i},{10 + i}.50,EUR" for i in range(1, 41)]
    rows[16] = "17,7.25"  # a field missing, on physical line 19 (below a title and the header)
    demo.upload(raw, key, ("Payments export\nid,amount,currency\n" + "\n".join(rows)).encode())
    detail = demo.wait("FileConverted", key_is(key))
    demo.check(detail["bad_rows"] == 1, f"expected 1 row set aside, not {detail['bad_rows']}")
    body = demo.rt.client("s3").get_object(
        Bucket=detail["output_bucket"], Key=detail["exceptions_key"]
    )["Body"]
    (bad,) = [json.loads(line) for line in body.read().decode().splitlines()]
    demo.say(
        f"FileConverted: {detail['rows']} rows loaded, {detail['bad_rows']} set aside "
        f"(line {bad['line']}: {bad['reason']}) -> s3://{detail['output_bucket']}/"
        f"{detail['exceptions_key']}"
    )
    key = "mwaa/blog/partition_dt=2026-11-20/transactions.csv"
    demo.upload(raw, key, b"id,amount,currency\n1,10.50,EUR\n2,7.25\n3,99.00,USD,extra\n")
    detail = demo.wait("FileRejected", lambda d: d["key"] == key)
    demo.say(f"FileRejected: {detail['reason_code']}: {detail['reason']}")
    demo.say(
        f"  bad lines {detail.get('bad_lines')}; copy kept at s3://{raw}/{detail['quarantine_key']}"
    )
    item = (
        demo.rt.client("dynamodb")
        .get_item(
            TableName=demo.out["AuditTableName"],
            Key={"pk": {"S": f"file#s3://{raw}/{key}"}, "sk": {"S": _version(demo, raw, key)}},
        )
        .get("Item", {})
    )
    demo.check(
        item.get("status", {}).get("S") == "REJECTED", "the audit does not show the rejection"
    )
    demo.say("audit: REJECTED (see `lakegov status`)")


def _version(demo: Demo, bucket: str, key: str) -> str:
    head = demo.rt.client("s3").head_object(Bucket=bucket, Key=key)
    return str(head.get("VersionId") or head["ETag"].strip('"'))


def step_governance(demo: Demo) -> None:
    from lakegov.governance import plan, validate

    demo.step("Lake Formation from a governance document: plan, then apply by upload")
    body = _example("governance/lf_tags_metadata.json")
    validated = validate(json.loads(body), source="lf_tags_metadata.json")
    for warning in validated.warnings:
        demo.say(f"warning {warning.path}: {warning.message}")
    the_plan = plan(
        validated,
        demo.rt.client("lakeformation"),
        demo.rt.client("glue"),
        catalog_id=demo.rt.account,
    )
    demo.say(f"plan: {len(the_plan.changes)} change(s)")
    for change in the_plan.to_dict()["changes"][:8]:
        if change.get("tag_key"):
            what = f"LF-Tag {change['tag_key']}={change.get('tag_values')}"
        else:
            what = f"{change.get('principal', '')} on {change.get('resource_name', '')} {change.get('permissions', '')}"
        demo.say(f"  {change['action']:<14} {what}")
    key = "governance/lf_tags_metadata.json"
    demo.upload(demo.out["ConfigBucketName"], key, body)
    applied = demo.wait("GovernanceApplied", lambda d: d["document"]["key"] == key)
    demo.say(
        f"GovernanceApplied: {applied['changes']} change(s), {applied['write_calls']} write call(s), "
        f"{applied['failed']} failed; result at s3://{demo.out['ConfigBucketName']}/{applied['result_key']}"
    )
    demo.check(applied["failed"] == 0, "some governance changes failed")
    again = plan(
        validated,
        demo.rt.client("lakeformation"),
        demo.rt.client("glue"),
        catalog_id=demo.rt.account,
    )
    demo.say(f"plan after apply: {len(again.changes)} change(s)")
    demo.check(not again.changes, "the plan after apply is not empty")

    bad = json.loads(body)
    bad[0]["access_type"] = "GIVE"
    bad[1]["table_permissions"] = ["SELECT", "DROP_EVERYTHING"]
    key = "governance/typo.json"
    demo.upload(demo.out["ConfigBucketName"], key, json.dumps(bad).encode())
    rejected = demo.wait("GovernanceRejected", lambda d: d["document"]["key"] == key)
    for error in rejected["errors"][:4]:
        demo.say(f"GovernanceRejected {error['path']}: {error['message']}")


def step_product_setup(demo: Demo) -> None:
    from lakegov.products.publish import publish_project

    demo.step("A data product: the dbt project and its product document")
    published = publish_project(demo.rt.client("s3"), demo.out["ConfigBucketName"], ROOT / "dbt")
    demo.say(f"dbt project published to s3://{demo.out['ConfigBucketName']}/{published.key}")
    key = "products/customers_cards.json"
    demo.upload(demo.out["ConfigBucketName"], key, _example("products/customers_cards.json"))
    applied = demo.wait("GovernanceApplied", lambda d: d["document"]["key"] == key)
    product = json.loads(_example("products/customers_cards.json"))
    demo.say(
        f"product {product['name']} registered ({applied['kind']}): runs when "
        f"{' and '.join(product['depends_on'])} have refreshed"
    )


def step_catalog(demo: Demo) -> None:
    demo.step("The Glue Data Catalog follows (direct registration) -> DatasetRefreshed")
    glue = demo.rt.client("glue")
    for table in ("mwaa_blog_customers", "mwaa_blog_cards"):
        refreshed = demo.wait("DatasetRefreshed", staging_refresh_of(table))
        described = glue.get_table(DatabaseName=refreshed["database"], Name=table)["Table"]
        columns = ", ".join(
            f"{c['Name']} {c['Type']}" for c in described["StorageDescriptor"]["Columns"][:5]
        )
        demo.say(
            f"{refreshed['database']}.{table}: partitions {refreshed.get('partitions')}; columns {columns}..."
        )


def step_product_run(demo: Demo) -> None:
    import io

    import pyarrow.parquet as pq

    demo.step("Both inputs refreshed: the product's dbt job runs once (local runner: dbt-duckdb)")
    started = demo.wait("ProductRunStarted", lambda d: d["product"] == "customers_cards")
    demo.say(
        f"ProductRunStarted: run {started['run_id']} on runner {started['runner']}, "
        f"selection {started.get('selection')}"
    )
    finished = demo.wait(
        "ProductRunFinished", lambda d: d["product"] == "customers_cards", timeout=300
    )
    demo.say(f"ProductRunFinished: {finished['status']}")
    demo.check(
        finished["status"] == "SUCCEEDED",
        f"the product run failed: {finished.get('failure_reason')}",
    )
    demo.say("run audit (the original audit_control fields):")
    for model in finished.get("models", []):
        demo.say(
            f"  {model['model_nm']:<34} {model['execution_status']:<8} rows {model.get('rows_affected')}"
        )
    s3 = demo.rt.client("s3")
    bucket = demo.out["FormattedBucketName"]
    for prefix in (
        "formatted_exception/mwaa_blog_customers_exception/",
        "formatted_exception/mwaa_blog_cards_exception/",
    ):
        keys = [
            o["Key"]
            for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            if o["Key"].endswith(".parquet")
        ]
        demo.check(bool(keys), f"no exception table under {prefix}")
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()))
        demo.say(f"{prefix.split('/')[1]}: {table.num_rows} rows; tests_failed:")
        for value in sorted(set(table.column("tests_failed").to_pylist()))[:6]:
            demo.say(f"    {value}")
    refreshed = [
        e["detail"]["table"]
        for e in demo.rt.events_of("DatasetRefreshed")
        if e["detail"].get("mode") == "product"
    ]
    demo.say(f"DatasetRefreshed for the product's outputs: {', '.join(sorted(set(refreshed)))}")


def _query(demo: Demo, sql: str, *, principal: str | None = None) -> Any:
    """Run ``sql`` (the demo's own SQL, over names it knows) as the deployer or ``principal``."""
    from lakegov.ops.deployment import Deployment
    from lakegov.query.athena import run_query
    from lakegov.query.cli import athena_client

    deployment = Deployment(demo.out, demo.rt.endpoint_url, demo.rt.region)
    athena = athena_client(deployment, principal)
    demo.say(f"{'as ' + principal.rsplit('/', 1)[-1] + ': ' if principal else ''}{sql}")
    return run_query(athena, sql, timeout_s=120)


def _show(demo: Demo, outcome: Any, limit: int = 5) -> None:
    from dataclasses import replace

    from lakegov.query.athena import render_table

    shown = replace(outcome, rows=outcome.rows[:limit])
    lines = render_table(shown).splitlines()
    for line in lines[:-1]:
        demo.say(f"  {line}")
    more = f", first {limit} shown" if len(outcome.rows) > limit else ""
    demo.say(f"  Total {len(outcome.rows)} rows{more}")


def step_query(demo: Demo) -> None:
    demo.step("Query the lake with Athena SQL (the local Athena: DuckDB over the catalog)")
    cards = _query(demo, "SELECT * FROM lakegov_dev_formatted.mwaa_blog_cards")
    demo.check(cards.succeeded, f"the cards query failed: {cards.reason}")
    _show(demo, cards)
    demo.check(len(cards.rows) == 30, f"expected the post's 30 card rows, got {len(cards.rows)}")
    for table in ("mwaa_blog_customers_exception", "mwaa_blog_cards_exception"):
        failed = _query(
            demo,
            "SELECT tests_failed, count(*) AS n FROM lakegov_dev_formatted_exception."  # noqa: S608
            f"{table} GROUP BY tests_failed ORDER BY n DESC, tests_failed",
        )
        demo.check(failed.succeeded, f"the {table} query failed: {failed.reason}")
        _show(demo, failed, limit=6)
    audit = _query(
        demo,
        "SELECT model_nm, execution_status, rows_affected "
        "FROM lakegov_dev_formatted.audit_control ORDER BY model_nm",
    )
    demo.check(audit.succeeded, f"the audit_control query failed: {audit.reason}")
    demo.check(
        len(audit.rows) == 4, f"expected 4 model runs in audit_control, got {len(audit.rows)}"
    )
    _show(demo, audit)

    analyst = f"arn:aws:iam::{demo.rt.account}:role/analyst"
    key = "governance/analyst_tables.json"
    demo.upload(demo.out["ConfigBucketName"], key, _example(key))
    applied = demo.wait("GovernanceApplied", lambda d: d["document"]["key"] == key)
    demo.check(applied["failed"] == 0, "tagging the cards table for the analyst failed")
    allowed = _query(
        demo,
        "SELECT count(*) AS cards FROM lakegov_dev_formatted.mwaa_blog_cards",
        principal=analyst,
    )
    demo.check(allowed.succeeded, f"the analyst was refused the cards table: {allowed.reason}")
    demo.say(f"  SUCCEEDED: {allowed.rows[0][0]} cards")
    refused = _query(
        demo, "SELECT * FROM lakegov_dev_formatted.mwaa_blog_customers", principal=analyst
    )
    demo.check(
        refused.state == "FAILED" and "AccessDeniedException" in refused.reason,
        f"the analyst was not refused the customers table ({refused.state})",
    )
    demo.say(f"  FAILED: {' '.join(refused.reason.split())}")


DOMAINS = (
    ("marketing", "222222222222", ["mwaa/blog/customers", "*mwaa_blog_cards*"]),
    ("finance", "333333333333", ["finance/*"]),
)


def document_is(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: bool(detail["document"]["key"] == key)


def step_subscriptions(demo: Demo) -> None:
    from lakegov.local.domains import deploy_domain

    demo.step("Domain accounts subscribe to refreshes (central bus -> their own bus)")
    for name, account, datasets in DOMAINS:
        domain = deploy_domain(demo.rt, name, account)
        demo.domains[name] = domain
        key = f"subscriptions/{name}.json"
        body = json.dumps(domain.subscription(datasets)).encode()
        demo.upload(demo.out["ConfigBucketName"], key, body)
        demo.wait("GovernanceApplied", document_is(key))
        demo.say(f"domain {name} (account {account}) subscribed to {datasets}")


def step_domains_received(demo: Demo) -> None:
    demo.step("What each domain account received (only what it subscribed to)")
    deadline = time.monotonic() + 30
    received: dict[str, list[str]] = {name: [] for name in demo.domains}
    while time.monotonic() < deadline:
        for name, domain in demo.domains.items():
            for event in domain.receive():
                detail = event["detail"]
                received[name].append(f"{detail['dataset']} ({detail.get('mode', '')})")
        if len(received["marketing"]) >= 3:
            break
        time.sleep(0.5)
    for name, datasets in received.items():
        listed = ", ".join(sorted(datasets)) or "nothing"
        demo.say(f"{name}: {len(datasets)} DatasetRefreshed: {listed}")
    demo.check(
        any(d.startswith("mwaa/blog/customers") for d in received["marketing"]),
        "the marketing domain did not receive the customers refresh",
    )
    demo.check(not received["finance"], "the finance domain received refreshes it did not ask for")


STEPS: list[Callable[[Demo], None]] = [
    step_stack,
    step_governance,
    step_subscriptions,
    step_product_setup,
    step_convert,
    step_catalog,
    step_reject,
    step_product_run,
    step_query,
    step_domains_received,
]


def run_demo(template: Path | None = None, verbose: bool = False) -> int:
    started = time.monotonic()
    print("lakegov demo: the service on the embedded runtime (moto server, no AWS account)")
    level = logger.log_level
    if not verbose:  # handlers log JSON for CloudWatch; the demo narrates instead
        logger.setLevel("ERROR")
    try:
        return _run(template, verbose, started)
    finally:
        logger.setLevel(level)  # an in-process caller (a test) keeps its own level


def _run(template: Path | None, verbose: bool, started: float) -> int:
    with LocalRuntime(template or find_template()) as rt:
        if verbose:
            rt.listeners.append(lambda kind, item: print(f"   [{kind}] {item}", flush=True))
        demo = Demo(rt, verbose)
        try:
            for step in STEPS:
                step(demo)
        except DemoFailed as exc:
            print(f"\nDEMO FAILED at step {demo.step_no}: {exc}", flush=True)
            return 1
        failures = [i for i in rt.invocations if not i.ok]
        print(
            f"\nDone in {time.monotonic() - started:.1f} s: {len(rt.invocations)} handler invocations "
            f"({len(failures)} failed and retried), {len(rt.events)} lakegov events."
        )
        print(json.dumps({"events": _event_counts(rt)}, sort_keys=True))
    return 0


def _event_counts(rt: LocalRuntime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in rt.events:
        counts[str(event.get("detail-type"))] = counts.get(str(event.get("detail-type")), 0) + 1
    return counts
