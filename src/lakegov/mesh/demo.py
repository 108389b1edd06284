"""The mesh part of ``lakegov demo``: two domains, two subscriptions, one refresh each.

For the lead's demo script: call :func:`run_mesh_demo` with the running embedded runtime
(its config function must know the ``subscriptions/`` kind). Returns True when each
domain received exactly what it subscribed to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from lakegov.events import EventPublisher, utc_now
from lakegov.local.runtime import LocalRuntime
from lakegov.mesh.local import LocalDomain, deploy_domain

DEMO_DOMAINS = (
    ("campaigns", "222222222222", ["sales/*", "*orders*"]),
    ("ledger", "333333333333", ["finance/*"]),
)
DEMO_REFRESHES = ("sales/eu", "shop/orders", "finance/gl", "hr/people")


def _wait(domain: LocalDomain, count: int, timeout: float) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(got) < count:
        got += [e["detail"]["dataset"] for e in domain.receive()]
        time.sleep(0.2)
    return sorted(got)


def _about(key: str) -> Callable[[dict[str, Any]], bool]:
    return lambda detail: bool(detail["document"]["key"] == key)


def run_mesh_demo(
    runtime: LocalRuntime, echo: Callable[[str], None] = print, timeout: float = 30.0
) -> bool:
    """Subscribe two domain accounts, refresh four datasets, show who received what."""
    bucket = runtime.outputs["ConfigBucketName"]
    s3 = runtime.client("s3")
    domains: list[tuple[LocalDomain, list[str]]] = []
    for name, account, datasets in DEMO_DOMAINS:
        domain = deploy_domain(runtime, name, account)
        key = f"subscriptions/{name}.json"
        s3.put_object(
            Bucket=bucket, Key=key, Body=json.dumps(domain.subscription(datasets)).encode()
        )
        runtime.wait_for_event("GovernanceApplied", _about(key), timeout=timeout)
        echo(f"[mesh] domain {name} (account {account}) subscribed to {datasets}")
        domains.append((domain, datasets))
    publisher = EventPublisher(runtime.client("events"), (runtime.outputs["ServiceEventBusName"],))
    for dataset in DEMO_REFRESHES:
        publisher.publish(
            "DatasetRefreshed",
            {
                "dataset": dataset,
                "database": "demo",
                "table": dataset.replace("/", "_"),
                "refreshed_at": utc_now(),
            },
        )
    echo(f"[mesh] refreshed {list(DEMO_REFRESHES)} on the service bus")
    expected = {"campaigns": ["sales/eu", "shop/orders"], "ledger": ["finance/gl"]}
    ok = True
    for domain, _ in domains:
        got = _wait(domain, len(expected[domain.name]), timeout)
        echo(f"[mesh] domain {domain.name} received {got}")
        ok &= got == expected[domain.name]
    return ok
