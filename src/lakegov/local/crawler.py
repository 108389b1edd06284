"""The Glue crawler's local stand-in, for the embedded runtime.

moto records ``StartCrawler`` but crawls nothing. :class:`LocalCrawlerStarter` is the
catalog's crawler adapter when ``LAKEGOV_LOCAL=1``: it calls moto's ``StartCrawler``
first (so a running crawler still raises ``CrawlerRunningException``), then does what the
crawler would - reads the Parquet under the crawler's S3 targets, creates each missing
table (one per folder at the configured table level) and adds its partitions - marks the
crawl finished, and puts the real "Glue Crawler State Change" events (``Started``, then
``Succeeded`` or ``Failed``, source ``aws.glue``) on the default bus. The rest of the
chain is the deployed one: the rule, the state-change function, ``DatasetRefreshed``.

Like a deployed crawler that crawls new folders only (``LOG`` schema-change policy), it
does not change the schema of a table that exists; lakegov applies schema changes itself.

Partition folders are read as Hive writes them: ``hour=10%3A00`` is the partition with value
``10:00`` (``%XX`` decoded) whose Location is that folder, as it is. (Whether a deployed Glue
crawler decodes ``%XX`` in folder names the same way cannot be checked on moto.)
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from typing import Any
from urllib.parse import unquote

from lakegov.catalog import glue as catalog
from lakegov.catalog.crawler import GlueCrawlerStarter
from lakegov.catalog.parquet import read_footer
from lakegov.errors import LakegovError
from lakegov.layout import Partition
from lakegov.observability import logger
from lakegov.schema import Column, columns_from_arrow, diff_columns

SOURCE = "aws.glue"
DETAIL_TYPE = "Glue Crawler State Change"


@dataclass
class CrawlReport:
    tables_created: int = 0
    partitions_created: int = 0
    tables: list[str] = field(default_factory=list)


def _split_s3(path: str) -> tuple[str, str]:
    bucket, _, prefix = path.removeprefix("s3://").partition("/")
    return bucket, prefix


def _table_level(configuration: str | None, target_prefix: str) -> int:
    try:
        grouping = json.loads(configuration or "{}").get("Grouping") or {}
        level = int(grouping.get("TableLevelConfiguration") or 0)
    except (ValueError, AttributeError):
        level = 0
    # Without a table level, the target folder itself is the table (as lakegov targets are).
    return level or 1 + len([p for p in target_prefix.split("/") if p])


def crawl(glue: Any, s3: Any, crawler: Mapping[str, Any]) -> CrawlReport:
    """Register what a crawler with this definition finds (tables + partitions)."""
    report = CrawlReport()
    database = str(crawler["DatabaseName"])
    prefix_name = str(crawler.get("TablePrefix") or "")
    for target in (crawler.get("Targets") or {}).get("S3Targets") or []:
        bucket, prefix = _split_s3(str(target["Path"]))
        exclusions = list(target.get("Exclusions") or [])
        level = _table_level(crawler.get("Configuration"), prefix)
        depth = level - 1  # folders below the bucket that make the table's location
        files: dict[str, list[tuple[str, Partition]]] = defaultdict(list)
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=bucket, Prefix=prefix.rstrip("/") + "/" if prefix else ""
        ):
            for obj in page.get("Contents") or []:
                key = str(obj["Key"])
                relative = key[len(prefix) :].lstrip("/") if prefix else key
                if any(fnmatch(relative, pattern) for pattern in exclusions):
                    continue
                if not key.endswith(".parquet") or int(obj.get("Size", 0)) == 0:
                    continue
                parts = key.split("/")
                if len(parts) <= depth:
                    continue
                table_folder = "/".join(parts[:depth]) + "/"
                items = []
                folders = parts[depth:-1]
                for folder in folders:
                    name, sep, value = folder.partition("=")
                    if not sep:
                        break
                    items.append((name, unquote(value)))  # Values decoded, folder kept
                else:
                    path = "".join(f"{folder}/" for folder in folders)
                    files[table_folder].append((key, Partition(tuple(items), path)))
        for table_folder, found in sorted(files.items()):
            name = (prefix_name + table_folder.rstrip("/").rsplit("/", 1)[-1]).lower()
            _register(glue, s3, bucket, database, name, table_folder, found, report)
    return report


def _register(
    glue: Any,
    s3: Any,
    bucket: str,
    database: str,
    name: str,
    table_folder: str,
    found: list[tuple[str, Partition]],
    report: CrawlReport,
) -> None:
    found.sort()
    keys = {p.keys for _, p in found}
    if len(keys) > 1:
        raise LakegovError(f"{table_folder}: files at different partition depths {sorted(keys)}")
    (partition_keys,) = keys
    table = catalog.get_table(glue, database, name)
    if table is None:
        columns: list[Column] = []
        for key in dict.fromkeys(k for k, _ in found):  # compatible schemas combine
            file_cols = [
                c
                for c in columns_from_arrow(read_footer(s3, bucket, key).schema)
                if c.name not in partition_keys
            ]
            columns = diff_columns(columns, file_cols).merged if columns else file_cols
        table = catalog.create_table(
            glue,
            database,
            catalog.new_table_input(
                name, columns, partition_keys, f"s3://{bucket}/{table_folder}", {}
            ),
        )
        report.tables_created += 1
    report.tables.append(name)
    partitions = list({p.items: p for _, p in found if p.items}.values())
    if partitions and not table.projected:
        result = catalog.register_partitions(glue, table, partitions, columns=table.columns)
        report.partitions_created += result.created


class LocalCrawlerStarter:
    """The catalog's crawler adapter on the embedded runtime (see the module doc)."""

    def __init__(self, *, glue: Any, s3: Any, events: Any, account: str, region: str) -> None:
        self.glue, self.s3, self.events = glue, s3, events
        self.account, self.region = account, region

    def __call__(self, name: str) -> None:
        GlueCrawlerStarter(self.glue)(name)  # CrawlerRunningException -> CrawlerBusy
        started = time.monotonic()
        self._emit(name, {"state": "Started", "message": "Crawler Started", "startTime": _now()})
        try:
            definition = self.glue.get_crawler(Name=name)["Crawler"]
            report = crawl(self.glue, self.s3, definition)
        except Exception as exc:  # the crawl fails; the start did not
            logger.warning("local crawl failed", extra={"crawler": name, "error": repr(exc)})
            self._finish(name)
            self._emit(
                name, {"state": "Failed", "message": "Crawler Failed", "errorMessage": str(exc)}
            )
            return
        self._finish(name)
        self._emit(
            name,
            {
                "state": "Succeeded",
                "message": "Crawler Succeeded",
                "tablesCreated": str(report.tables_created),
                "tablesUpdated": "0",
                "tablesDeleted": "0",
                "partitionsCreated": str(report.partitions_created),
                "partitionsUpdated": "0",
                "partitionsDeleted": "0",
                "warningMessage": "N/A",
                "runningTime (sec)": str(int(time.monotonic() - started)),
                "completionDate": _now(),
            },
        )

    def _finish(self, name: str) -> None:
        # moto moves a crawl from RUNNING to COMPLETED when its crawls are listed once.
        self.glue.list_crawls(CrawlerName=name)

    def _emit(self, name: str, detail: dict[str, Any]) -> None:
        link = (
            f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logEventViewer:group=/aws-glue/crawlers;stream={name}"
        )
        body = {"crawlerName": name, "accountId": self.account, "cloudWatchLogLink": link, **detail}
        response = self.events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(body),
                    "EventBusName": "default",
                    "Resources": [f"arn:aws:glue:{self.region}:{self.account}:crawler/{name}"],
                }
            ]
        )
        if response.get("FailedEntryCount"):
            raise LakegovError(f"could not put the crawler event: {response['Entries']}")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
