"""The service's own tables in the lake: ``audit_control``, ``test_results``, ``lineage_events``.

Each record set is one Parquet object at a deterministic key (:func:`lakegov.layout.record_key`)
in the formatted bucket, registered in the formatted database as a table partitioned by
``run_date``. A run's audit and test results are keyed by the run: writing the same run
twice (a duplicate run-end event) rewrites the same object, and those tables never hold a
run twice. A ``lineage_events`` object is named by the run events it holds (a batch's): a
run event delivered again in another batch is held twice, and readers keep one row per run
id and event type.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from lakegov.layout import (
    AUDIT_CONTROL_TABLE,
    LINEAGE_EVENTS_TABLE,
    RECORD_PARTITION,
    TEST_RESULTS_TABLE,
    record_key,
    record_partition,
    table_location,
)

if TYPE_CHECKING:
    import pyarrow as pa


@cache
def schemas() -> dict[str, pa.Schema]:
    """Each table's Parquet schema. pyarrow is imported here, not with the module: the
    products' fan-in function imports the run state's code without the pyarrow layer."""
    import pyarrow as pa

    timestamp = pa.timestamp("us")  # UTC, as Athena's timestamp has no zone
    return {
        AUDIT_CONTROL_TABLE: _audit_control(timestamp),
        TEST_RESULTS_TABLE: _test_results(timestamp),
        LINEAGE_EVENTS_TABLE: _lineage_events(timestamp),
    }


def _run_columns() -> list[tuple[str, pa.DataType]]:
    """Which run of which product, on which runner: a column each in both run tables."""
    import pyarrow as pa

    return [("run_id", pa.string()), ("product", pa.string()), ("runner", pa.string())]


def _audit_control(ts: pa.DataType) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            # the original solution's fields, in its order
            ("model_nm", pa.string()),
            ("process_nm", pa.string()),
            ("execution_start_date", ts),
            ("execution_end_date", ts),
            ("execution_status", pa.string()),
            ("execution_failure_reason", pa.string()),
            ("rows_affected", pa.int64()),
            # lakegov's
            *_run_columns(),
            ("unique_id", pa.string()),
            ("recorded_at", ts),
        ]
    )


def _test_results(ts: pa.DataType) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("test_name", pa.string()),
            ("test_type", pa.string()),
            ("model_nm", pa.string()),
            ("column_nm", pa.string()),
            ("status", pa.string()),
            ("failures", pa.int64()),
            ("message", pa.string()),
            ("execution_start_date", ts),
            ("execution_end_date", ts),
            ("unique_id", pa.string()),
            *_run_columns(),
            ("recorded_at", ts),
        ]
    )


def _lineage_events(ts: pa.DataType) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            ("event_time", ts),
            ("event_type", pa.string()),
            ("job_namespace", pa.string()),
            ("job_name", pa.string()),
            ("run_id", pa.string()),
            ("inputs", pa.string()),  # JSON array of {namespace, name}
            ("outputs", pa.string()),  # JSON array of {namespace, name}
            ("event", pa.string()),  # the whole OpenLineage run event, JSON
        ]
    )


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 text (``...Z`` or with an offset) as a naive UTC datetime; None stays None."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def to_parquet(schema: pa.Schema, rows: Sequence[Mapping[str, Any]]) -> bytes:
    """``rows`` (dicts; timestamps as ISO text) as one Parquet file of ``schema``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {f.name: [] for f in schema}
    for row in rows:
        for f in schema:
            value = row.get(f.name)
            is_time = pa.types.is_timestamp(f.type)
            columns[f.name].append(parse_time(value) if is_time else value)
    table = pa.Table.from_pydict(columns, schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


@dataclass
class LakeRecords:
    """Writes and registers the service's own tables (``s3`` and ``glue`` are clients)."""

    s3: Any
    glue: Any
    bucket: str
    database: str
    _registered: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def write(
        self, table: str, timestamp: str, names: Iterable[str], rows: Sequence[Mapping[str, Any]]
    ) -> str | None:
        """Put ``rows`` as the object of (``table``, day of ``timestamp``, ``names``) and make
        sure the table and its partition exist. Nothing is written for no rows."""
        if not rows:
            return None
        key = record_key(table, timestamp, *names)
        body = to_parquet(schemas()[table], rows)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self.register(table, timestamp)
        return key

    def register(self, table: str, timestamp: str) -> None:
        """Create ``table`` (once) and its partition for the day of ``timestamp``."""
        from lakegov.catalog import glue as catalog
        from lakegov.schema import columns_from_arrow

        partition = record_partition(timestamp)
        if (table, partition.folder) in self._registered:
            return
        columns = columns_from_arrow(schemas()[table])
        existing = catalog.get_table(self.glue, self.database, table)
        if existing is None:
            existing = catalog.create_table(
                self.glue,
                self.database,
                catalog.new_table_input(
                    table,
                    columns,
                    [RECORD_PARTITION],
                    table_location(self.bucket, table),
                    {catalog.P_DATASET: f"lakegov/{table}"},
                ),
            )
        catalog.register_partitions(self.glue, existing, [partition], columns=columns)
        self._registered.add((table, partition.folder))
