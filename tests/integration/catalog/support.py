"""Helpers for the catalog tests: Parquet in (moto) S3, FileConverted events, services."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from tests.conftest import create_audit_table as shared_create_audit_table

from lakegov.audit import AuditStore
from lakegov.catalog.crawler import GlueCrawlerStarter, sqs_send_later
from lakegov.catalog.service import CatalogServices, Message
from lakegov.events import EventPublisher
from lakegov.settings import Settings

REGION = "us-east-1"
ACCOUNT = "123456789012"
RAW = "lakegov-raw"
FORMATTED = "lakegov-formatted"
BUS = "lakegov-test-service"
AUDIT = "lakegov-test-audit"
STAGING = "lakegov_test_formatted_stg"
CRAWLER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/lakegov-crawler"


def settings(**changes: Any) -> Settings:
    base = Settings(
        environment="test",
        region=REGION,
        raw_bucket=RAW,
        formatted_bucket=FORMATTED,
        config_bucket="lakegov-config",
        service_bus=BUS,
        audit_table=AUDIT,
        account_id=ACCOUNT,
        glue_database_prefix="lakegov_test_",
        crawler_role_arn=CRAWLER_ROLE,
        crawl_coalesce_seconds=0,
    )
    return replace(base, **changes)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def fingerprint(schema: pa.Schema) -> str:
    return hashlib.sha256(str(schema).encode()).hexdigest()[:32]


def put_parquet(s3: Any, key: str, table: pa.Table, bucket: str = FORMATTED) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(table))


def file_converted(
    table_name: str,
    data: pa.Table,
    partitions: Sequence[Mapping[str, str]] = ({"partition_dt": "2026-11-20"},),
    *,
    s3: Any = None,
    source_key: str | None = None,
    version: str = "v1",
    files_per_partition: int = 1,
    write_all: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A FileConverted detail; with ``s3``, its Parquet objects are written too.

    ``write_all=False`` writes only the first object (the one whose footer is read).
    """
    keys = []
    for partition in partitions:
        folder = "".join(f"{k}={v}/" for k, v in partition.items())
        for n in range(files_per_partition):
            key = f"formatted_stg/{table_name}/{folder}part-{version}-{n}.parquet"
            keys.append(key)
            if s3 is not None and (write_all or len(keys) == 1):
                put_parquet(s3, key, data)
    return {
        "bucket": RAW,
        "key": source_key or f"landing/{table_name}/{version}.csv",
        "version_id": version,
        "dataset": table_name,
        "table": table_name,
        "partition_values": dict(partitions[0]) if partitions else {},
        "output_bucket": FORMATTED,
        "output_keys": keys,
        "rows": data.num_rows,
        "schema_fingerprint": fingerprint(data.schema),
        "columns": [{"name": f.name, "type": str(f.type)} for f in data.schema],
        "converted_at": "2026-11-20T10:00:00.000Z",
        **extra,
    }


def envelope(detail: Mapping[str, Any], detail_type: str = "FileConverted") -> dict[str, Any]:
    return {
        "version": "0",
        "id": hashlib.md5(json.dumps(detail, sort_keys=True).encode()).hexdigest(),
        "detail-type": detail_type,
        "source": "lakegov",
        "account": ACCOUNT,
        "time": "2026-11-20T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": dict(detail),
    }


def messages(*details: Mapping[str, Any]) -> list[Message]:
    return [Message(f"m{i}", envelope(d)) for i, d in enumerate(details)]


def create_audit_table(ddb: Any) -> None:
    shared_create_audit_table(ddb, AUDIT)


@dataclass
class CountingStarter:
    """The Glue starter, counting calls (and the starts that went through)."""

    glue: Any
    calls: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)

    def __call__(self, name: str) -> None:
        self.calls.append(name)
        GlueCrawlerStarter(self.glue)(name)
        self.started.append(name)


@dataclass
class Env:
    """A moto account with what the catalog function touches."""

    s3: Any
    glue: Any
    ddb: Any
    sqs: Any
    events: Any
    queue_url: str
    settings: Settings
    publisher: EventPublisher
    audit: AuditStore
    starter: CountingStarter

    def services(self, **changes: Any) -> CatalogServices:
        svc = CatalogServices(
            settings=self.settings,
            glue=self.glue,
            s3=self.s3,
            dynamodb=self.ddb,
            publisher=self.publisher,
            audit=self.audit,
            start_crawler=self.starter,
            send_later=sqs_send_later(self.sqs, self.queue_url),
        )
        return replace(svc, **changes)

    def published(self, detail_type: str) -> list[dict[str, Any]]:
        return [dict(e.detail) for e in self.publisher.published if e.detail_type == detail_type]

    def queued(self, wait: bool = False) -> list[Message]:
        """Receive (and delete) what the catalog queue holds now."""
        out: list[Message] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1 if wait else 0
            ).get("Messages", [])
            if not got:
                return out
            for m in got:
                out.append(Message(m["MessageId"], json.loads(m["Body"])))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


_SESSIONS: list[boto3.session.Session] = []


def _session() -> boto3.session.Session:
    """One session per test process: its loader caches the service models across tests."""
    if not _SESSIONS:
        _SESSIONS.append(boto3.session.Session(region_name=REGION))
    return _SESSIONS[0]


def make_env(**setting_changes: Any) -> Env:
    """Create the resources (call inside ``mock_aws``)."""
    session = _session()
    s3, glue, ddb = session.client("s3"), session.client("glue"), session.client("dynamodb")
    sqs, events = session.client("sqs"), session.client("events")
    s3.create_bucket(Bucket=FORMATTED)
    s3.create_bucket(Bucket=RAW)
    glue.create_database(DatabaseInput={"Name": STAGING})
    create_audit_table(ddb)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="catalog")["QueueUrl"]
    cfg = settings(catalog_queue_url=url, **setting_changes)
    return Env(
        s3=s3,
        glue=glue,
        ddb=ddb,
        sqs=sqs,
        events=events,
        queue_url=url,
        settings=cfg,
        publisher=EventPublisher(events, (BUS,), record=True),
        audit=AuditStore(AUDIT, ddb),
        starter=CountingStarter(glue),
    )


def count_calls(client: Any, operation: str) -> list[dict[str, Any]]:
    """Record the parameters of every ``operation`` call made through ``client``."""
    calls: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append(params)

    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"provide-client-params.{service}.{operation}", record)
    return calls


Transform = Callable[[pa.Table], pa.Table]


class Atomic:
    """A client whose requests run one at a time.

    DynamoDB applies each request atomically; moto's in-process backend does not when
    threads share it (concurrent ADDs lose updates). Serializing the *requests* (not the
    workers) restores the service's guarantee for concurrency tests.
    """

    _lock = threading.Lock()

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("get_paginator"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attr(*args, **kwargs)

        return call
