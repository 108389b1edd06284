"""What a ``FileConverted`` event says about the catalog: table, location, partitions, policy.

The ``formatted_stg/`` layout itself (folders, partition encoding) is
:mod:`lakegov.layout`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lakegov.errors import PermanentError
from lakegov.layout import STAGING_PREFIX, Partition, split_key
from lakegov.settings import Settings

MODES = ("direct", "crawler")
# Which schema changes against the catalog pass (the datasets/ document's schema.changes).
SCHEMA_POLICIES = ("additive", "any", "none")
PROJECTION_POLICIES = ("auto", "enabled", "disabled")


@dataclass(frozen=True)
class ConvertedFile:
    """One ``FileConverted`` event, reduced to what the catalog needs."""

    dataset: str
    database: str
    table: str
    bucket: str  # the formatted bucket
    keys: tuple[str, ...]  # Parquet objects
    table_prefix: str  # formatted_stg/<table>/
    partitions: tuple[Partition, ...]
    rows: int
    fingerprint: str
    source: str  # s3://raw-bucket/key
    source_version: str
    mode: str
    schema_policy: str
    projection: str
    crawler_name: str = ""
    converted_at: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.table_prefix}"

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return self.partitions[0].keys if self.partitions else ()

    @property
    def data_files(self) -> list[str]:
        return [f"s3://{self.bucket}/{k}" for k in self.keys]

    @property
    def audit_subject(self) -> str:
        """What the catalog claims once: the landed file, or one sheet of a workbook
        (each sheet has its own ``FileConverted``, to its own table)."""
        sheet = self.detail.get("sheet")
        return f"{self.source}#sheet={sheet}" if sheet else self.source

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any], settings: Settings) -> ConvertedFile:
        """Read a FileConverted detail. Missing ``catalog_mode`` means the service default."""
        keys = tuple(str(k) for k in detail.get("output_keys") or ())
        if not keys:
            raise PermanentError("FileConverted has no output_keys")
        table_prefix, folder_table, _ = split_key(keys[0])
        partitions: dict[tuple[tuple[str, str], ...], Partition] = {}
        layouts = set()
        for key in keys:
            prefix, _, partition = split_key(key)
            if prefix != table_prefix:
                raise PermanentError(f"output keys span two tables: {table_prefix} and {prefix}")
            layouts.add(partition.keys)
            if not partition.items:
                continue  # unpartitioned: the table location holds the file
            known = partitions.setdefault(partition.items, partition)
            if known.folder != partition.folder:
                raise PermanentError(
                    f"partition {partition.to_event()} is in two folders: "
                    f"{known.folder!r} and {partition.folder!r}"
                )
        if len(layouts) > 1:
            raise PermanentError(f"output keys mix partition layouts: {sorted(layouts)}")
        table = str(detail.get("table") or folder_table)
        if table != folder_table:
            raise PermanentError(
                f"table {table!r} does not match the output folder {folder_table!r}"
            )
        mode = str(detail.get("catalog_mode") or settings.default_catalog_mode)
        policy = str(detail.get("schema_changes") or "additive")
        projection = str(detail.get("partition_projection") or "auto")
        for name, value, allowed in (
            ("catalog_mode", mode, MODES),
            ("schema_changes", policy, SCHEMA_POLICIES),
            ("partition_projection", projection, PROJECTION_POLICIES),
        ):
            if value not in allowed:
                raise PermanentError(f"FileConverted {name} {value!r} is not one of {allowed}")
        version = detail.get("version_id") or detail.get("etag") or detail.get("converted_at")
        return cls(
            dataset=str(detail.get("dataset") or table),
            database=str(detail.get("database") or settings.database(STAGING_PREFIX)),
            table=table,
            bucket=str(detail.get("output_bucket") or settings.formatted_bucket),
            keys=keys,
            table_prefix=table_prefix,
            partitions=tuple(partitions.values()),
            rows=int(detail.get("rows") or 0),
            fingerprint=str(detail.get("schema_fingerprint") or ""),
            source=f"s3://{detail.get('bucket')}/{detail.get('key')}",
            source_version=str(version or ""),
            mode=mode,
            schema_policy=policy,
            projection=projection,
            crawler_name=str(detail.get("crawler_name") or ""),
            converted_at=str(detail.get("converted_at") or ""),
            detail=detail,
        )
