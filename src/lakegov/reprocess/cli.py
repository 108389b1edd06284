"""``lakegov reprocess s3://RAW/PREFIX`` and ``lakegov reapply PREFIX``.

Both start the deployment's rerun state machine (``RerunStateMachineArn``), on AWS or on the
embedded runtime alike (the runtime answers Step Functions for the template's state
machines and runs the Distributed Map's batches through its own function invocation), then
follow the run's tallies in the audit table until the execution ends.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from lakegov.audit import DONE_STATUSES, AuditStore
from lakegov.errors import ConfigurationError
from lakegov.ops.deployment import Deployment, deployment_arguments, resolve_deployment
from lakegov.reprocess.runs import (
    TALLIES,
    RunInput,
    head,
    new_run_id,
    parse_since,
    run_totals,
)

STATE_MACHINE_OUTPUT = "RerunStateMachineArn"
METADATA_PREFIXES = ("governance/", "datasets/", "products/", "subscriptions/")
POLL_SECONDS = 1.0


class Progress:
    """A progress bar on a terminal, a line per tenth otherwise (logs, CI)."""

    def __init__(self, total: int, stream: TextIO, *, label: str) -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last_tenth = -1

    def update(self, done: int, tallies: dict[str, int]) -> None:
        detail = ", ".join(f"{k} {v}" for k, v in tallies.items())
        if self.tty:
            width = 30
            filled = width * done // self.total if self.total else width
            bar = "#" * filled + "." * (width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {done}/{self.total}  {detail}")
            self.stream.flush()
            return
        tenth = 10 * done // self.total if self.total else 10
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{self.total} ({detail})\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise ConfigurationError(f"{url!r}: expected s3://BUCKET/PREFIX")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigurationError(f"{url!r}: no bucket")
    return bucket, prefix


def _listing(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or []:
            yield str(obj["Key"])


@dataclass
class RunReport:
    run_id: str
    status: str
    total: int
    tallies: dict[str, int]
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "objects": self.total,
            **self.tallies,
            **({"error": self.error} if self.error else {}),
        }


def start_and_follow(
    deployment: Deployment,
    run: RunInput,
    prefix: str,
    *,
    label: str,
    stream: TextIO,
    timeout_s: float = 86400.0,
) -> RunReport:
    """Start the rerun state machine for ``run`` and follow it to its end."""
    machine = deployment.output(STATE_MACHINE_OUTPUT)
    s3 = deployment.client("s3")
    audit = AuditStore(deployment.output("AuditTableName"), deployment.client("dynamodb"))
    total = sum(1 for _ in _listing(s3, run.bucket, prefix))
    states = deployment.client("stepfunctions")
    execution = states.start_execution(
        stateMachineArn=machine, name=run.run_id, input=json.dumps(run.to_input(prefix))
    )["executionArn"]
    progress = Progress(total, stream, label=label)
    deadline = time.monotonic() + timeout_s
    while True:
        described = states.describe_execution(executionArn=execution)
        tallies = run_totals(audit, run.run_id)
        progress.update(min(total, sum(tallies.values())), tallies)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            progress.close()
            raise ConfigurationError(f"run {run.run_id} still running after {timeout_s:.0f} s")
        time.sleep(POLL_SECONDS)
    progress.close()
    error = ""
    if described["status"] != "SUCCEEDED":
        error = f"{described.get('error', '')}: {described.get('cause', '')}".strip(": ")
    tallies = run_totals(audit, run.run_id)
    # what no attempt counted failed every retry (or was listed after this command listed)
    tallies["failed"] = max(0, total - sum(tallies.values()))
    return RunReport(run.run_id, str(described["status"]), total, tallies, error)


def _print_report(report: RunReport, as_json: bool, verb: str) -> int:
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{report.tallies[name]} {name}" for name in TALLIES)
        print(f"{verb} {report.run_id}: {report.status}, {report.total} object(s): {counts}")
        if report.error:
            print(f"  {report.error}")
    ok = report.status == "SUCCEEDED" and report.tallies.get("failed", 0) == 0
    return 0 if ok else 1


def _reprocess(args: argparse.Namespace) -> int:
    deployment = resolve_deployment(args.outputs, args.stack)
    bucket, prefix = split_s3_url(args.url)
    raw = deployment.output("RawBucketName")
    if bucket != raw:
        raise ConfigurationError(f"s3://{bucket} is not the deployment's raw bucket ({raw})")
    since = parse_since(args.since or "")
    run = RunInput(
        run_id=new_run_id("landed"),
        bucket=bucket,
        target="landed",
        force=args.force,
        since=since.isoformat() if since else "",
    )
    if args.dry_run:
        return _dry_run(deployment, run, prefix, as_json=args.json)
    report = start_and_follow(deployment, run, prefix, label="reprocess", stream=sys.stderr)
    return _print_report(report, args.json, "reprocess")


def _dry_run(deployment: Deployment, run: RunInput, prefix: str, *, as_json: bool) -> int:
    """What a run would do, from the audit table, changing nothing."""
    s3 = deployment.client("s3")
    audit = AuditStore(deployment.output("AuditTableName"), deployment.client("dynamodb"))
    since = parse_since(run.since)
    would = {"convert": 0, "skip": 0}
    for key in _listing(s3, run.bucket, prefix):
        stored = head(s3, run.bucket, key)
        if stored is None or (since and stored.last_modified and stored.last_modified < since):
            would["skip"] += 1
            continue
        item = audit.get("file", stored.subject, stored.version)
        done = item is not None and item.get("status") in DONE_STATUSES
        would["skip" if done and not run.force else "convert"] += 1
    if as_json:
        print(
            json.dumps(
                {"dry_run": True, "would_convert": would["convert"], "would_skip": would["skip"]}
            )
        )
    else:
        print(
            f"reprocess (dry run) s3://{run.bucket}/{prefix}: would convert {would['convert']}, "
            f"skip {would['skip']} (already converted or before --since)"
        )
    return 0


def _reapply(args: argparse.Namespace) -> int:
    prefix = args.prefix
    if not prefix.startswith(METADATA_PREFIXES):
        raise ConfigurationError(
            f"{prefix!r}: reapply takes a config-bucket prefix under "
            + ", ".join(METADATA_PREFIXES)
        )
    deployment = resolve_deployment(args.outputs, args.stack)
    run = RunInput(
        run_id=new_run_id("metadata"),
        bucket=deployment.output("ConfigBucketName"),
        target="metadata",
        force=True,
    )
    report = start_and_follow(deployment, run, prefix, label="reapply", stream=sys.stderr)
    return _print_report(report, args.json, "reapply")


def register(sub: Any) -> None:
    reprocess = sub.add_parser(
        "reprocess",
        help="convert (again) what is already in the raw bucket",
        description="Every object under the prefix goes through the convert path, once per "
        "object version: versions already converted are skipped unless --force. Runs the "
        "deployment's rerun state machine (a Step Functions Distributed Map; on the embedded "
        "runtime, the same definition through the runtime's functions), then compacts.",
        epilog="example:\n  lakegov reprocess s3://RAW/mwaa/blog/ --since 2026-11-01",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reprocess.add_argument("url", help="s3://RAW_BUCKET/PREFIX")
    reprocess.add_argument("--since", help="only objects last modified at or after this date")
    reprocess.add_argument(
        "--force", action="store_true", help="convert again versions already converted"
    )
    reprocess.add_argument(
        "--dry-run", action="store_true", help="say what would be converted; change nothing"
    )
    deployment_arguments(reprocess, "machine-readable summary")
    reprocess.set_defaults(func=_reprocess)

    reapply = sub.add_parser(
        "reapply",
        help="run config-bucket documents again through validate-then-apply",
        description="Every document under the prefix (governance/, datasets/, products/, "
        "subscriptions/) is validated and applied again, as if uploaded again, without "
        "uploading it; results/ and the audit record each outcome.",
        epilog="example:\n  lakegov reapply governance/",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reapply.add_argument("prefix", help="governance/ | datasets/ | products/ | subscriptions/ ...")
    deployment_arguments(reapply, "machine-readable summary")
    reapply.set_defaults(func=_reapply)
