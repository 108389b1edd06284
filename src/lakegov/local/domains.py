"""Consumer domains on the embedded runtime: ``templates/domain.yaml`` in another account.

The demo and the end-to-end tests deploy the real consumer template into other account
ids of the same moto server, so the central bus's cross-account deliveries reach real
domain buses, rules and queues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakegov.local.runtime import LocalRuntime
from lakegov.local.stack import StackBuilder


@dataclass(frozen=True)
class LocalDomain:
    """A deployed consumer domain: its outputs, and clients in its account."""

    name: str
    account: str
    outputs: dict[str, str]
    runtime: LocalRuntime

    @property
    def bus_arn(self) -> str:
        return self.outputs["DomainEventBusArn"]

    def client(self, service: str) -> Any:
        return self.runtime.client(service, account=self.account)

    def subscription(self, datasets: list[str], **fields: Any) -> dict[str, Any]:
        """A subscription document for this domain (the template's SubscriptionDocument)."""
        document: dict[str, Any] = json.loads(self.outputs["SubscriptionDocument"])
        document["datasets"] = list(datasets)
        document.update(fields)
        return document

    def receive(self, wait_seconds: int = 0) -> list[dict[str, Any]]:
        """The events waiting in the pipelines' queue (consumed)."""
        sqs = self.client("sqs")
        url = self.outputs["PipelineQueueUrl"]
        out: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            ).get("Messages", [])
            if not messages:
                return out
            for message in messages:
                out.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0


def domain_template(runtime: LocalRuntime) -> Path:
    return runtime.template_path.parent / "templates" / "domain.yaml"


def deploy_domain(runtime: LocalRuntime, name: str, account: str) -> LocalDomain:
    """Provision ``templates/domain.yaml`` for domain ``name`` in ``account``."""
    builder = StackBuilder(
        domain_template(runtime),
        lambda service: runtime.client(service, account=account),
        endpoint_url=runtime.endpoint_url,
        stack=f"lakegov-domain-{name}",
        region=runtime.region,
        account=account,
        parameters={
            "DomainName": name,
            "CentralAccountId": runtime.account,
            "CentralEventBusArn": runtime.outputs["CentralEventBusArn"],
        },
    )
    stack = builder.build()
    runtime.attach(stack, account)  # the share function runs in the domain's account
    return LocalDomain(name=name, account=account, outputs=stack.outputs, runtime=runtime)
