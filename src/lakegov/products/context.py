"""What the products' functions need (:class:`ProductsContext`), built once per container.

:func:`lakegov.products.wiring.products_context` builds it from the deployment's settings
for the handlers and the embedded runtime; tests build it with stand-in runners.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lakegov.audit import AuditStore
from lakegov.events import EventPublisher
from lakegov.lineage.records import LakeRecords
from lakegov.products.artifacts import DbtResults, RunArtifacts, load_artifacts
from lakegov.products.model import Product
from lakegov.products.store import ProductStore
from lakegov.runners.base import Runner


@dataclass
class ProductsContext:
    """What the products' functions need; built once per container by the handlers."""

    store: ProductStore
    audit: AuditStore
    publisher: EventPublisher
    runners: Callable[[str], Runner]
    s3: Any
    config_bucket: str
    glue_prefix: str = ""
    default_runner: str = "codebuild"
    sns: Any = None
    alarm_topic_arn: str = ""
    dbt_project_key: str = "dbt/project.zip"
    account_id: str = ""
    environment: str = ""
    # A stuck start is taken over after this; below CodeBuild's 5-minute idempotency-token
    # window, so the takeover's StartBuild returns the build that may already exist.
    lease_s: int = 240
    clock: Callable[[], float] = time.time
    dbt: DbtResults = field(default_factory=DbtResults)
    # audit_control and test_results in the lake (None: kept in the audit table only)
    records: LakeRecords | None = None
    load_artifacts: Callable[[Any, str, str, str], RunArtifacts] = load_artifacts

    def product(self, name: str) -> Product | None:
        document = self.store.get_document(name)
        return Product.from_document(document) if document else None
