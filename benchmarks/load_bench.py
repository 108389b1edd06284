"""Load on the embedded runtime: a burst of small files and metadata documents.

Uploads N small landed files (spread over several datasets and partitions) and M governance
documents as fast as boto3 allows (a burst), or at a steady rate (``--rate``: files per
second, the documents spread over the same time), then waits until every one has its outcome event, and
reports throughput, end-to-end latency percentiles (upload -> FileConverted or
GovernanceApplied seen on the service bus), and the counts that prove nothing was lost or
duplicated: events per key, audit items, Parquet objects in the formatted bucket. From the
local endpoint's figures (``GET /_lakegov/stats``, :mod:`lakegov.local.request_stats`) it
adds the AWS calls per file and the operations that took the most of the endpoint's CPU.

    python -m benchmarks.load_bench --files 1000 --documents 100
    python -m benchmarks.load_bench --files 1000 --documents 100 --rate 25

A burst measures throughput; its latencies are those of the backlog it makes (the last
files wait for every file before them). A steady rate measures whether the runtime keeps
up: if it does, each file's latency is its own, however long the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _csv(i: int) -> bytes:
    rows = [
        f"{i * 10 + r},customer-{i}-{r},{(i * 7 + r) % 1000 / 10:.2f},2026-11-{1 + r % 28:02d}"
        for r in range(10)
    ]
    return ("order_id,customer,amount,order_date\n" + "\n".join(rows) + "\n").encode()


def _key(i: int, layout: str) -> str:
    """File ``i``'s key. ``tables``: each file a table of its own (the landing layout names
    a table after its folders and file name), the catalog's most work per file: a table
    created for each. ``partitions``: ten tables, each file a new partition of one."""
    day = f"order_dt=2026-11-{1 + i % 20:02d}"
    if layout == "partitions":
        return f"load/orders_{i % 10}/{day}/batch={i:05d}/orders.csv"
    return f"load/orders_{i % 10}/{day}/batch-{i:05d}.csv"


def _document(i: int) -> bytes:
    return json.dumps(
        [
            {
                "role_arn": f"arn:aws:iam::123456789012:role/load-team-{i:03d}",
                "access_type": "GRANT",
                "lf_tags": [],
                "named_data_catalog": [
                    {"Database": "lakegov_dev_formatted", "Table": f"orders_{i % 10}"}
                ],
                "table_permissions": ["SELECT", "DESCRIBE"],
            }
        ]
    ).encode()


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a running process (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _operations(rows: list[dict[str, Any]], files: int, top: int) -> dict[str, object]:
    """The endpoint's requests of the run: AWS calls per file and the operations that took
    the most of its CPU."""
    calls = sum(r["count"] for r in rows)
    return {
        "aws_calls": calls,
        "aws_calls_per_file": round(calls / max(1, files), 1),
        "endpoint_cpu_seconds_in_requests": round(sum(r["cpu_seconds"] for r in rows), 1),
        "endpoint_top_operations": [
            {
                "operation": f"{r['service']} {r['operation']}",
                "count": r["count"],
                "cpu_s": round(r["cpu_seconds"], 2),
                "ms_per_call": round(1000 * r["cpu_seconds"] / r["count"], 2),
            }
            for r in rows[:top]
        ],
    }


def _messages_left(sqs: Any) -> dict[str, dict[str, int]]:
    """The stack's queues that still hold messages once settled: waiting (visible) or
    received and neither deleted nor returned (in flight). Only dead-letter queues may."""
    left = {}
    for page in sqs.get_paginator("list_queues").paginate():
        for url in page.get("QueueUrls", []):
            counts = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            visible = int(counts["ApproximateNumberOfMessages"])
            in_flight = int(counts["ApproximateNumberOfMessagesNotVisible"])
            if visible or in_flight:
                left[url.rsplit("/", 1)[1]] = {"visible": visible, "in_flight": in_flight}
    return left


def _dead_letters(name: str) -> bool:
    return "DeadLetter" in name or name.endswith("-dlq")


def _at(start: float, offset: float) -> None:
    """Wait until ``offset`` seconds after ``start`` (``time.time()``)."""
    delay = start + offset - time.time()
    if delay > 0:
        time.sleep(delay)


def run(
    files: int,
    documents: int,
    timeout: float,
    top: int = 15,
    rate: float = 0.0,
    layout: str = "tables",
) -> dict[str, object]:
    from lakegov.local.request_stats import difference, read_stats
    from lakegov.local.runtime import LocalRuntime
    from lakegov.observability import logger

    logger.setLevel("ERROR")
    with LocalRuntime(ROOT / "template.yaml", stack_name="load") as rt:
        out = rt.outputs
        s3 = rt.client("s3")
        uploaded: dict[str, float] = {}
        stats_before = read_stats(rt.endpoint_url)
        cpu_before = time.process_time(), _cpu_seconds(rt.endpoint_pid)
        started = time.time()

        # a steady rate: file i at i / rate seconds, the documents spread over the same time
        period = files / rate if rate > 0 else 0.0

        late: list[float] = []  # at a steady rate: how late each upload started

        def put_file(i: int, due: float | None = None) -> None:
            key = _key(i, layout)
            uploaded[key] = time.time() if due is None else due  # a late start is latency too
            s3.put_object(Bucket=out["RawBucketName"], Key=key, Body=_csv(i))

        def put_document(i: int, due: float | None = None) -> None:
            key = f"governance/load-{i:03d}.json"
            uploaded[key] = time.time() if due is None else due
            s3.put_object(Bucket=out["ConfigBucketName"], Key=key, Body=_document(i))

        with ThreadPoolExecutor(max_workers=8) as pool:
            if period:  # submitted in the order they are due: a worker waits for each
                due = sorted(
                    [(i / rate, put_file, i) for i in range(files)]
                    + [
                        ((i + 0.5) * period / max(1, documents), put_document, i)
                        for i in range(documents)
                    ],
                    key=lambda d: d[0],
                )

                def put_at(offset: float, put: Callable[..., None], i: int) -> None:
                    _at(started, offset)
                    late.append(time.time() - started - offset)
                    put(i, started + offset)

                for future in [pool.submit(put_at, *d) for d in due]:
                    future.result()
            else:
                list(pool.map(put_file, range(files)))
                list(pool.map(put_document, range(documents)))
        upload_s = time.time() - started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = len(rt.events_of("FileConverted")) + len(rt.events_of("GovernanceApplied"))
            if done >= files + documents:
                break
            time.sleep(0.5)
        elapsed = time.time() - started  # every file and document has its outcome event
        try:  # let follow-on work (catalog, forwarding, fan-in) settle before counting
            rt.wait_idle(timeout=600)
        except TimeoutError:
            print("warning: follow-on work still running after 600 s", file=sys.stderr)
        settled = time.time() - started
        cpu_runtime = time.process_time() - cpu_before[0]
        cpu_endpoint = _cpu_seconds(rt.endpoint_pid) - cpu_before[1]
        operations = difference(read_stats(rt.endpoint_url), stats_before)

        converted = Counter(e["detail"]["key"] for e in rt.events_of("FileConverted"))
        applied = Counter(e["detail"]["document"]["key"] for e in rt.events_of("GovernanceApplied"))
        latencies = [
            e["_received_at"] - uploaded[e["detail"]["key"]] for e in rt.events_of("FileConverted")
        ]
        doc_latencies = [
            e["_received_at"] - uploaded[e["detail"]["document"]["key"]]
            for e in rt.events_of("GovernanceApplied")
        ]
        parquet = 0
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=out["FormattedBucketName"], Prefix="formatted_stg/load_"
        ):
            parquet += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".parquet"))
        audit = rt.client("dynamodb")
        processed = 0
        for page in audit.get_paginator("scan").paginate(
            TableName=out["AuditTableName"],
            FilterExpression="begins_with(pk, :p) AND #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":p": {"S": f"file#s3://{out['RawBucketName']}/load/"},
                ":s": {"S": "PROCESSED"},
            },
        ):
            processed += page["Count"]
        failures = [i for i in rt.invocations if not i.ok]
        left = _messages_left(rt.client("sqs"))
        return {
            "files": files,
            "documents": documents,
            "rate_files_per_second": rate or "burst",
            "layout": layout,
            "upload_seconds": round(upload_s, 1),
            # at a steady rate, latencies count from when each upload was due
            "upload_late_max_s": round(max(late), 2) if late else None,
            "total_seconds": round(elapsed, 1),
            "settled_seconds": round(settled, 1),
            "files_per_second": round(files / elapsed, 1),
            # CPU seconds until settled: handlers, dispatcher and uploads / moto's endpoint
            "cpu_seconds_runtime": round(cpu_runtime, 1),
            "cpu_seconds_endpoint": round(cpu_endpoint, 1),
            "load_average_1min_at_end": round(os.getloadavg()[0], 1),
            "file_latency_s": {
                "p50": round(statistics.median(latencies), 2),
                "p90": round(_percentile(latencies, 0.9), 2),
                "p99": round(_percentile(latencies, 0.99), 2),
                "max": round(max(latencies), 2),
            }
            if latencies
            else {},
            "document_latency_s": {
                "p50": round(statistics.median(doc_latencies), 2),
                "p99": round(_percentile(doc_latencies, 0.99), 2),
            }
            if doc_latencies
            else {},
            "FileConverted_keys": len(converted),
            "FileConverted_duplicates": sum(c - 1 for c in converted.values()),
            "GovernanceApplied_keys": len(applied),
            "GovernanceApplied_duplicates": sum(c - 1 for c in applied.values()),
            "lost_files": files - len(converted),
            "lost_documents": documents - len(applied),
            "parquet_objects": parquet,
            "audit_processed": processed,
            "handler_invocations": len(rt.invocations),
            "failed_invocations": len(failures),
            "rejected_files": len(rt.events_of("FileRejected")),
            "messages_left": left,  # by queue, once settled
            "messages_left_outside_dead_letter_queues": sum(
                n["visible"] + n["in_flight"] for q, n in left.items() if not _dead_letters(q)
            ),
            # the endpoint's requests from the first upload until settled (not the counting)
            **_operations(operations, files, top),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="files per second (default: a burst)"
    )
    parser.add_argument(
        "--layout",
        choices=("tables", "partitions"),
        default="tables",
        help="each file a table of its own (default), or ten tables of many partitions",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "load.json")
    args = parser.parse_args(argv)
    result = run(args.files, args.documents, args.timeout, rate=args.rate, layout=args.layout)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = (
        result["lost_files"] == 0
        and result["lost_documents"] == 0
        and result["FileConverted_duplicates"] == 0
        and result["messages_left_outside_dead_letter_queues"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
