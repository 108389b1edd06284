"""A small adapter over the Glue Data Catalog: Parquet tables, partitions, projection.

Every call is idempotent: creating a table that exists falls back to reading it, and a
partition that already exists counts as registered (``AlreadyExistsException`` per entry
in ``BatchCreatePartition`` is success).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.layout import Partition
from lakegov.schema import Column, columns_from_glue

PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
MAX_PARTITIONS_PER_CALL = 100  # BatchCreatePartition limit

# Table parameters lakegov keeps on its tables.
P_DATASET = "lakegov.dataset"
P_FINGERPRINT = "lakegov.schema_fingerprint"
P_UNTYPED = "lakegov.untyped_columns"
P_PARTITIONS = "lakegov.partition_count"
P_PROJECTION = "projection.enabled"

_TABLE_INPUT_KEYS = (
    "Name",
    "Description",
    "Owner",
    "Retention",
    "StorageDescriptor",
    "PartitionKeys",
    "TableType",
    "Parameters",
)


def _wrap(exc: ClientError, what: str) -> Exception:
    if is_transient(exc):
        return RetryableError(f"{what}: {exc}")
    return exc


def parquet_storage(columns: Sequence[Column], location: str) -> dict[str, Any]:
    return {
        "Columns": [c.to_glue() for c in columns],
        "Location": location,
        "InputFormat": PARQUET_INPUT,
        "OutputFormat": PARQUET_OUTPUT,
        "Compressed": False,
        "NumberOfBuckets": -1,
        "StoredAsSubDirectories": False,
        "SerdeInfo": {
            "SerializationLibrary": PARQUET_SERDE,
            "Parameters": {"serialization.format": "1"},
        },
        "Parameters": {"classification": "parquet"},
    }


@dataclass
class Table:
    """A Glue table as lakegov reads and writes it."""

    database: str
    name: str
    raw: dict[str, Any]
    # False: the input this worker created the table from, not the table as Glue returned
    # it (no VersionId to update it against)
    read: bool = True

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.raw.get("Parameters") or {})

    @property
    def columns(self) -> list[Column]:
        sd = self.raw.get("StorageDescriptor") or {}
        untyped = [n for n in self.parameters.get(P_UNTYPED, "").split(",") if n]
        return columns_from_glue(sd.get("Columns") or [], untyped)

    @property
    def partition_keys(self) -> tuple[str, ...]:
        return tuple(str(k["Name"]) for k in self.raw.get("PartitionKeys") or [])

    @property
    def location(self) -> str:
        return str((self.raw.get("StorageDescriptor") or {}).get("Location") or "")

    @property
    def projected(self) -> bool:
        return self.parameters.get(P_PROJECTION, "").lower() == "true"

    @property
    def partition_count(self) -> int:
        try:
            return int(self.parameters.get(P_PARTITIONS, "0"))
        except ValueError:
            return 0

    def table_input(
        self,
        *,
        columns: Sequence[Column] | None = None,
        parameters: Mapping[str, str | None] | None = None,
    ) -> dict[str, Any]:
        """This table as a TableInput, with ``columns`` and ``parameters`` changed.

        A parameter set to None is removed.
        """
        out = {k: self.raw[k] for k in _TABLE_INPUT_KEYS if k in self.raw}
        if columns is not None:
            out["StorageDescriptor"] = {
                **(out.get("StorageDescriptor") or {}),
                "Columns": [c.to_glue() for c in columns],
            }
            untyped = ",".join(c.name for c in columns if c.untyped)
            parameters = {**(parameters or {}), P_UNTYPED: untyped or None}
        if parameters:
            merged = dict(out.get("Parameters") or {})
            for key, value in parameters.items():
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
            out["Parameters"] = merged
        return out


def new_table_input(
    name: str,
    columns: Sequence[Column],
    partition_keys: Sequence[str],
    location: str,
    parameters: Mapping[str, str],
) -> dict[str, Any]:
    params = {"classification": "parquet", "EXTERNAL": "TRUE", **parameters}
    untyped = ",".join(c.name for c in columns if c.untyped)
    if untyped:
        params[P_UNTYPED] = untyped
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": params,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in partition_keys],
        "StorageDescriptor": parquet_storage(columns, location),
    }


def get_table(glue: Any, database: str, name: str) -> Table | None:
    try:
        raw = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "EntityNotFoundException":
            return None
        raise _wrap(exc, f"GetTable {database}.{name}") from exc
    return Table(database, name, raw)


def create_table(glue: Any, database: str, table_input: Mapping[str, Any]) -> Table:
    """Create the table, or return the existing one when another worker won the race.

    The table this call created is returned as it was asked for, without reading it back
    (it has no ``VersionId`` then: :func:`update_table` reads it first); the one another
    worker created is read.
    """
    name = str(table_input["Name"])
    try:
        glue.create_table(DatabaseName=database, TableInput=dict(table_input))
    except ClientError as exc:
        if error_code(exc) == "EntityNotFoundException":
            raise PermanentError(f"Glue database {database} does not exist") from exc
        if error_code(exc) != "AlreadyExistsException":
            raise _wrap(exc, f"CreateTable {database}.{name}") from exc
    else:
        return Table(database, name, copy.deepcopy(dict(table_input)), read=False)
    table = get_table(glue, database, name)
    if table is None:
        raise RetryableError(f"{database}.{name} vanished right after it was created")
    return table


def update_table(
    glue: Any,
    table: Table,
    table_input: Mapping[str, Any],
    *,
    skip_archive: bool = False,
    reread: bool = True,
) -> Table:
    """Update ``table``; a concurrent update (``VersionId`` moved on) is retried later.

    Returns the table as stored afterwards (``reread``), else ``table`` unchanged.
    """
    if not table.read:
        raise ValueError(
            f"{table.database}.{table.name} was not read from Glue: read it before updating it"
        )
    kwargs: dict[str, Any] = {"DatabaseName": table.database, "TableInput": dict(table_input)}
    if table.raw.get("VersionId"):
        kwargs["VersionId"] = str(table.raw["VersionId"])
    if skip_archive:
        kwargs["SkipArchive"] = True
    try:
        glue.update_table(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "ConcurrentModificationException":
            raise RetryableError(f"{table.database}.{table.name} changed meanwhile") from exc
        raise _wrap(exc, f"UpdateTable {table.database}.{table.name}") from exc
    if not reread:
        return table
    return get_table(glue, table.database, table.name) or table


@dataclass(frozen=True)
class PartitionResult:
    created: int
    existing: int
    calls: int


def register_partitions(
    glue: Any, table: Table, partitions: Iterable[Partition], *, columns: Sequence[Column]
) -> PartitionResult:
    """Add ``partitions`` to ``table`` (Parquet, under the table's location), 100 per call.

    Each partition's Location is its folder as the files are stored (values encoded), its
    Values the decoded values. An unpartitioned table (or a partition without values) makes
    no call: Glue has no partition with empty values.
    """
    base = table.location.rstrip("/") + "/"
    inputs = [
        {
            "Values": p.values,
            "StorageDescriptor": parquet_storage(columns, base + p.folder),
            "Parameters": {"classification": "parquet"},
        }
        for p in partitions
        if p.items
    ]
    if not table.partition_keys:
        inputs = []
    created = existing = calls = 0
    for start in range(0, len(inputs), MAX_PARTITIONS_PER_CALL):
        chunk = inputs[start : start + MAX_PARTITIONS_PER_CALL]
        calls += 1
        try:
            response = glue.batch_create_partition(
                DatabaseName=table.database, TableName=table.name, PartitionInputList=chunk
            )
        except ClientError as exc:
            raise _wrap(exc, f"BatchCreatePartition {table.database}.{table.name}") from exc
        failed = 0
        for error in response.get("Errors") or []:
            code = str((error.get("ErrorDetail") or {}).get("ErrorCode", ""))
            if code == "AlreadyExistsException":
                existing += 1
                failed += 1
                continue
            raise RetryableError(
                f"BatchCreatePartition {table.database}.{table.name} failed for "
                f"{error.get('PartitionValues')}: {code} {error.get('ErrorDetail')}"
            )
        created += len(chunk) - failed
    return PartitionResult(created, existing, calls)


def partition_values(glue: Any, table: Table) -> list[list[str]]:
    """Every registered partition's values (one pass over GetPartitions)."""
    out: list[list[str]] = []
    paginator = glue.get_paginator("get_partitions")
    for page in paginator.paginate(
        DatabaseName=table.database, TableName=table.name, ExcludeColumnSchema=True
    ):
        out.extend([str(v) for v in p["Values"]] for p in page.get("Partitions") or [])
    return out


# -- partition projection --------------------------------------------------------------
# (pattern, strptime format, Athena format, interval unit): the date shapes a partition
# value may take to be projected as a date.
_DATE_SHAPES = (
    (re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}$"), "%Y-%m-%d-%H", "yyyy-MM-dd-HH", "HOURS"),
    (re.compile(r"^\d{4}-\d{2}-\d{2}$"), "%Y-%m-%d", "yyyy-MM-dd", "DAYS"),
    (re.compile(r"^\d{8}$"), "%Y%m%d", "yyyyMMdd", "DAYS"),
    (re.compile(r"^\d{4}-\d{2}$"), "%Y-%m", "yyyy-MM", "MONTHS"),
)
# Keys named like a calendar field project as bounded integers.
_BOUNDED = {"month": (1, 12), "day": (1, 31), "hour": (0, 23)}


def _date_shape(value: str) -> tuple[str, str, str] | None:
    for pattern, fmt, athena, unit in _DATE_SHAPES:
        if pattern.match(value):
            try:
                datetime.strptime(value, fmt).replace(tzinfo=UTC)
            except ValueError:
                return None
            return fmt, athena, unit
    return None


def projection_parameters(
    keys: Sequence[str], values: Iterable[Sequence[str]], location: str
) -> dict[str, str] | None:
    """Athena partition projection for a table whose partitions took ``values``.

    Projectable keys: date-shaped values (``2026-11-20``, ``20261120``, ``2026-11``,
    ``2026-11-20-07``; projected from the earliest value to NOW), a ``year`` key of
    4-digit years, and ``month``/``day``/``hour`` keys of small integers. None when a key
    is anything else (ids, names): projecting those would need every value listed.

    Athena puts the raw value into ``storage.location.template`` while the converter writes
    folders with percent-encoded values (``10:00`` -> ``10%3A00``), so only values that need
    no encoding can be projected: every shape above is digits and dashes, and a value that
    would be encoded is refused outright (None) rather than projected to a missing folder.
    """
    columns: list[list[str]] = [[] for _ in keys]
    for row in values:
        for i, value in enumerate(row):
            columns[i].append(value)
    params: dict[str, str] = {P_PROJECTION: "true"}
    for key, seen in zip(keys, columns, strict=True):
        if not seen or any(needs_encoding(v) for v in seen):
            return None
        name = key.lower()
        shapes = {_date_shape(v) for v in seen}
        shape = shapes.pop() if len(shapes) == 1 else None
        if shape is not None:
            _, athena, unit = shape
            params |= {
                f"projection.{key}.type": "date",
                f"projection.{key}.format": athena,
                f"projection.{key}.range": f"{min(seen)},NOW",
                f"projection.{key}.interval": "1",
                f"projection.{key}.interval.unit": unit,
            }
        elif name == "year" and all(re.fullmatch(r"\d{4}", v) for v in seen):
            params |= {
                f"projection.{key}.type": "date",
                f"projection.{key}.format": "yyyy",
                f"projection.{key}.range": f"{min(seen)},NOW",
                f"projection.{key}.interval": "1",
                f"projection.{key}.interval.unit": "YEARS",
            }
        elif name in _BOUNDED and all(v.isdigit() for v in seen):
            low, high = _BOUNDED[name]
            params |= {
                f"projection.{key}.type": "integer",
                f"projection.{key}.range": f"{low},{high}",
            }
            if any(len(v) > 1 and v.startswith("0") for v in seen):
                params[f"projection.{key}.digits"] = "2"
        else:
            return None
    template = location.rstrip("/") + "/" + "".join(f"{k}=${{{k}}}/" for k in keys)
    params["storage.location.template"] = template
    return params


def needs_encoding(value: str) -> bool:
    """Whether the converter's folder for ``value`` differs from the value itself."""
    return quote(value, safe="") != value


def widen_projection_range(table: Table, partitions: Iterable[Partition]) -> dict[str, str]:
    """Parameters to change so that ``partitions`` fall inside the projected date ranges."""
    params = table.parameters
    changes: dict[str, str] = {}
    for partition in partitions:
        for key, value in partition.items:
            if params.get(f"projection.{key}.type") != "date":
                continue
            current = changes.get(f"projection.{key}.range") or params.get(
                f"projection.{key}.range", ""
            )
            low, _, high = current.partition(",")
            if value < low and len(value) == len(low):
                changes[f"projection.{key}.range"] = f"{value},{high or 'NOW'}"
    return changes
