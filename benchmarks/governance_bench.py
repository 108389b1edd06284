"""Governance apply benchmark: 1,000 grants, engine (plan + batched apply) vs naive.

Runs moto's server in-process on 127.0.0.1 (real HTTP, real botocore serialisation) and
applies one governance document with 1,000 grants (20 principals x 48 named tables, plus
20 principals x 2 LF-Tag expressions; 2 LF-Tags to create) two ways:

* engine: ``plan`` (reads) then ``apply`` (BatchGrantPermissions, 20 entries a call);
* naive: create the LF-Tags, then one ``GrantPermissions`` call per grant, no reads.

Each is run on a fresh server, then run again on the state it produced (re-apply).
Usage: ``python benchmarks/governance_bench.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import socket
import statistics
import time
import urllib.request
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from lakegov.governance import apply, plan, validate

ACCOUNT = "123456789012"
PRINCIPALS = 20
TABLES = 48
TAG_EXPRESSIONS = [
    [{"TagKey": "domain", "TagValues": ["sales"]}],
    [{"TagKey": "domain", "TagValues": ["finance"]}, {"TagKey": "tier", "TagValues": ["gold"]}],
]


def document() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    for p in range(PRINCIPALS):
        role = f"arn:aws:iam::{ACCOUNT}:role/analyst-{p:02}"
        entries.append(
            {
                "role_arn": role,
                "access_type": "GRANT",
                "named_data_catalog": [
                    {"Database": "sales", "Table": f"table_{t:02}"} for t in range(TABLES)
                ],
                "table_permissions": ["SELECT", "DESCRIBE"],
            }
        )
        for expression in TAG_EXPRESSIONS:
            entries.append(
                {
                    "role_arn": role,
                    "access_type": "GRANT",
                    "lf_tags": expression,
                    "table_permissions": ["SELECT"],
                }
            )
    return entries


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingClient:
    """Wraps a client; counts calls by operation (every call, reads included)."""

    WRITES = ("create", "update", "grant", "revoke", "batch", "add", "remove", "delete")

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._client, name)

        def counted(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(**kwargs)

        return counted

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op.startswith(self.WRITES))

    @property
    def reads(self) -> int:
        return sum(self.calls.values()) - self.writes


def engine_run(lf: CountingClient) -> tuple[float, int, int, int]:
    start = time.perf_counter()
    the_plan = plan(validate(document()), lf, catalog_id=ACCOUNT)
    result = apply(the_plan, lf)
    elapsed = time.perf_counter() - start
    assert result.ok, [o.to_dict() for o in result.failed][:3]
    assert result.write_calls == lf.writes
    return elapsed, len(the_plan.changes), lf.writes, lf.reads


def naive_run(lf: CountingClient) -> tuple[float, int, int, int]:
    """What a straightforward script does: create tags, one GrantPermissions per grant."""
    start = time.perf_counter()
    desired = validate(document()).desired_state(ACCOUNT)
    for key, values in desired.tags.items():
        if key not in {t["TagKey"] for t in lf.list_lf_tags()["LFTags"]}:
            lf.create_lf_tag(TagKey=key, TagValues=sorted(values))
    for grant in desired.grants.values():
        lf.grant_permissions(
            Principal={"DataLakePrincipalIdentifier": grant.principal},
            Resource=grant.resource,
            Permissions=sorted(grant.permissions),
        )
    return time.perf_counter() - start, len(desired.grants), lf.writes, lf.reads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    for var, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(var, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "lakeformation",
        region_name="eu-west-1",
        endpoint_url=url,
        config=Config(retries={"mode": "adaptive", "max_attempts": 10}),
    )

    def reset() -> None:
        req = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req).close()

    rows: dict[str, list[tuple[float, int, int, int]]] = {}
    try:
        for _ in range(args.repeat):
            for name, run in (("engine", engine_run), ("naive", naive_run)):
                reset()
                rows.setdefault(f"{name}: first apply", []).append(run(CountingClient(client)))
                rows.setdefault(f"{name}: re-apply", []).append(run(CountingClient(client)))
    finally:
        server.stop()

    grants = len(validate(document()).desired_state(ACCOUNT).grants)
    tags = len(validate(document()).desired_state(ACCOUNT).tags)
    goal = math.ceil(grants / 20) + tags
    print(
        f"document: {grants} grants, {tags} LF-Tags to create; goal: <= {goal} write calls, "
        f"0 on re-apply; median of {args.repeat} runs, moto server over HTTP\n"
    )
    print("| run | changes | write calls | read calls | time (s) |")
    print("|---|---:|---:|---:|---:|")
    for label, results in rows.items():
        changes = results[0][1]
        writes = results[0][2]
        reads = results[0][3]
        assert all(r[2] == writes for r in results), "write calls vary between runs"
        seconds = statistics.median(r[0] for r in results)
        print(f"| {label} | {changes} | {writes} | {reads} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
