"""Direct registration: the table and its partitions straight from the Parquet schema.

No crawler run (no DPU cost, no minutes of delay) and exact types: the schema comes from
the footer of the Parquet the convert step wrote, one ranged GET per distinct schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lakegov.catalog import glue as catalog
from lakegov.catalog.converted import ConvertedFile
from lakegov.catalog.evolution import Decision, Evolution, evolve
from lakegov.catalog.parquet import ObjectGone, read_footer
from lakegov.errors import PermanentError, RetryableError
from lakegov.layout import Partition
from lakegov.observability import logger
from lakegov.schema import Column, columns_from_arrow


class OutputGone(PermanentError):
    """A converted file's output is no longer there: a newer version of its landed file
    replaced it (or the landed file was deleted) after it was converted. Nothing of it is
    left to register; the newer version's own FileConverted registers what replaced it."""

    def __init__(self, file: ConvertedFile, reason: str) -> None:
        super().__init__(reason)
        self.file = file


def file_columns(s3: Any, files: Sequence[ConvertedFile]) -> dict[str, list[Column]]:
    """Columns per file (keyed by its first output key), one footer per distinct schema.
    OutputGone names a file whose footer was read and whose output is gone."""
    by_schema: dict[str, list[Column]] = {}
    out: dict[str, list[Column]] = {}
    for f in files:
        schema_id = f.fingerprint or f"{f.bucket}/{f.keys[0]}"
        if schema_id not in by_schema:
            try:
                footer = read_footer(s3, f.bucket, f.keys[0])
            except ObjectGone as exc:
                raise OutputGone(f, str(exc)) from exc
            by_schema[schema_id] = columns_from_arrow(footer.schema)
        out[f.keys[0]] = by_schema[schema_id]
    return out


@dataclass
class TableOutcome:
    """What one table's registration did."""

    database: str
    table: str
    evolution: Evolution
    table_created: bool = False
    table_updated: bool = False
    partitions: list[Partition] = field(default_factory=list)
    partitions_created: int = 0
    partitions_existing: int = 0
    partition_calls: int = 0
    projected: bool = False

    @property
    def accepted(self) -> list[ConvertedFile]:
        return self.evolution.accepted

    @property
    def rejected(self) -> list[Decision]:
        return self.evolution.rejected


def _unique_partitions(files: Sequence[ConvertedFile]) -> list[Partition]:
    seen: dict[tuple[tuple[str, str], ...], Partition] = {}
    for f in files:
        for p in f.partitions:
            if p.items:  # an unpartitioned file has none; never an empty-values partition
                seen.setdefault(p.items, p)
    return list(seen.values())


def apply_schema(
    glue: Any,
    database: str,
    table_name: str,
    files: Sequence[ConvertedFile],
    columns: dict[str, list[Column]],
    *,
    create: bool,
) -> tuple[catalog.Table | None, Evolution, bool, bool]:
    """Decide each file against the table; create or widen the table accordingly.

    Returns (table, evolution, created, updated). With ``create=False`` a missing table
    stays missing (crawler mode: the crawler creates it).
    """
    table = catalog.get_table(glue, database, table_name)
    ordered = sorted(files, key=lambda f: f.converted_at)
    pairs = [(f, columns[f.keys[0]]) for f in ordered]
    if table is None:
        evolution = evolve(None, None, pairs)
        if not create or not evolution.accepted:
            return None, evolution, False, False
        first = evolution.accepted[0]
        parameters = {catalog.P_DATASET: first.dataset, catalog.P_FINGERPRINT: first.fingerprint}
        # the partitions registered right after count from the start: no UpdateTable after
        # them (see register_direct)
        counted = len(_unique_partitions(evolution.accepted)) if evolution.partition_keys else 0
        if counted:
            parameters[catalog.P_PARTITIONS] = str(counted)
        table_input = catalog.new_table_input(
            table_name, evolution.columns, evolution.partition_keys, first.location, parameters
        )
        table = catalog.create_table(glue, database, table_input)
        if table.columns == evolution.columns and table.partition_keys == tuple(
            evolution.partition_keys
        ):
            return table, evolution, True, False
        # Another worker created it first, maybe with other columns: decide against that.
        evolution = evolve(table.columns, table.partition_keys, pairs)
    else:
        evolution = evolve(table.columns, table.partition_keys, pairs)
    if evolution.changed and evolution.columns != table.columns:
        fingerprint = evolution.accepted[-1].fingerprint if evolution.accepted else ""
        table = catalog.update_table(
            glue,
            table,
            table.table_input(
                columns=evolution.columns, parameters={catalog.P_FINGERPRINT: fingerprint}
            ),
        )
        return table, evolution, False, True
    return table, evolution, False, False


def _projection_due(policy: str, count: int, threshold: int) -> bool:
    """Whether a table of ``count`` partitions should be projected, by its dataset's policy."""
    return policy == "enabled" or (policy == "auto" and count > threshold)


def register_direct(
    glue: Any,
    s3: Any,
    files: Sequence[ConvertedFile],
    *,
    projection_threshold: int,
    on_schema: Callable[[Evolution], None] | None = None,
) -> TableOutcome:
    """Create or update the table of ``files`` (all one table) and add their partitions.

    Partitions go in ``BatchCreatePartition`` calls of at most 100; existing ones count as
    registered. A table over ``projection_threshold`` partitions whose keys are dates
    (or whose dataset asks for it) switches to partition projection, after which Athena
    computes partitions from the layout and no more are registered.

    ``on_schema`` is called with the schema decisions as soon as the table holds them,
    before any partition call: a change applied to the table is announced even when
    registering partitions then fails (its retry finds the table already changed).
    """
    database, table_name = files[0].database, files[0].table
    columns = file_columns(s3, files)
    table, evolution, created, updated = apply_schema(
        glue, database, table_name, files, columns, create=True
    )
    if on_schema is not None:
        on_schema(evolution)
    outcome = TableOutcome(database, table_name, evolution, created, updated)
    if table is None or not evolution.accepted:
        return outcome
    partitions = _unique_partitions(evolution.accepted)
    outcome.partitions = partitions
    if not partitions:
        return outcome
    policy = evolution.accepted[-1].projection
    if table.projected:
        outcome.projected = True
        unreachable = [
            p.to_event() for p in partitions if any(catalog.needs_encoding(v) for v in p.values)
        ]
        if unreachable:
            # The location template substitutes raw values; these folders hold encoded ones.
            logger.warning(
                "partitions cannot be read through partition projection",
                extra={"table": f"{database}.{table_name}", "partitions": unreachable},
            )
        changes = catalog.widen_projection_range(table, partitions)
        if changes:
            catalog.update_table(glue, table, table.table_input(parameters=changes), reread=False)
        return outcome
    result = catalog.register_partitions(glue, table, partitions, columns=table.columns)
    outcome.partitions_created = result.created
    outcome.partitions_existing = result.existing
    outcome.partition_calls = result.calls
    # A table created here counted its partitions in CreateTable already.
    presumed = table.partition_count if created else 0
    if result.created == presumed and not (
        created and _projection_due(policy, presumed, projection_threshold)
    ):
        return outcome
    if not table.read:  # the count was off (another worker registered some) or projection
        table = catalog.get_table(glue, database, table_name) or table
        if not table.read:
            raise RetryableError(f"{database}.{table_name} vanished right after it was created")
    count = table.partition_count + result.created - presumed
    params: dict[str, str | None] = {catalog.P_PARTITIONS: str(count)}
    values: list[list[str]] | None = None
    if _projection_due(policy, count, projection_threshold):
        values = catalog.partition_values(glue, table)
        if policy == "auto" and len(values) <= projection_threshold:
            # The count ran ahead of the partitions (a creation counted some that a failure
            # then kept out, and the retry counted them again): the listing decides.
            params[catalog.P_PARTITIONS] = str(len(values))
            values = None
    if values is not None:
        projection = catalog.projection_parameters(table.partition_keys, values, table.location)
        if projection:
            params.update(projection)
            outcome.projected = True
            logger.info(
                "partition projection enabled",
                extra={"table": f"{database}.{table_name}", "partitions": len(values)},
            )
        elif policy == "enabled" or count - result.created <= projection_threshold:
            # Say it once, when the threshold is crossed (or when the dataset asked).
            logger.warning(
                "partition keys cannot be projected; partitions stay registered",
                extra={"table": f"{database}.{table_name}", "keys": table.partition_keys},
            )
    # A counter bump is no schema change: skip the archived table version.
    catalog.update_table(
        glue,
        table,
        table.table_input(parameters=params),
        skip_archive=not outcome.projected,
        reread=False,
    )
    return outcome
