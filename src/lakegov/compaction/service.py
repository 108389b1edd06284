"""Compaction: a partition's small Parquet files merged into files near a target size,
without a reader ever seeing missing or double rows.

Athena (and the local Athena) reads every object under a partition's location, so files
cannot be swapped in place. Instead each partition has *generations* (the folder rules are
:mod:`lakegov.layout`'s): the compacted set is written in full under the next generation's
folder, hidden from readers of the current one; the partition's location is then switched
in Glue (one ``UpdatePartition``, atomic for readers: a query reads either the whole old set
or the whole new one); only then are the old files deleted.

One job per partition, in steps recorded in the partition's state item (the audit table,
``compaction#<database>.<table>/<folder>`` at ``state``), so a crash between steps leaves
the partition readable and the next run resumes where it stopped:

``idle``      plan: the current generation's files; the small ones are merged, the others
              carried over (a server-side copy); both written under the next generation
              (whatever an earlier, crashed attempt left there is removed first).
``written``   files converted into the old generation since the plan are copied over too,
              then the location is switched.
``switched``  late files copied again (a conversion may have finished just before the
              switch), every file of the old generation deleted, the old -> new key of each
              one recorded (``compacted#<old key>``, so a ``FileConverted``'s output keys
              stay resolvable through the audit), back to ``idle`` at the new generation.

The converter writes into the current generation (:func:`current_generation`) and, when it
finds the generation moved while it converted, moves its file into the new one
(:func:`follow_generation`); with the copy of late files on both sides of the switch, a
file converted during a compaction is never lost.

Known limit: when a landed key whose output was merged is replaced or deleted, its rows stay
in the merged file (the replaced output key no longer exists to be deleted); see the README.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from lakegov.audit import AuditStore
from lakegov.aws import error_code
from lakegov.errors import PermanentError, RetryableError
from lakegov.layout import (
    STAGING_PREFIX,
    DatasetRef,
    generation_folder,
    generation_prefix,
    in_generation,
    key_generation,
)
from lakegov.observability import count, logger
from lakegov.s3 import copy_object, delete_keys, upload_file

STATE_KIND = "compaction"
STATE_VERSION = "state"
LOCK_VERSION = "lock"
MAPPING_KIND = "compacted"
LOCK_SECONDS = 900
# a partition's job (download, merge, upload up to a few target-sized files) is not started
# with less time left: killed half-way it would hold its lock until the lease runs out
PARTITION_TIME_GUARD_MS = 300_000
SMALL_FRACTION = 0.75  # a file under this fraction of the target is merged, others carried

StepHook = Callable[[str], None]


def state_subject(database: str, table: str, folder: str) -> str:
    return f"{database}.{table}/{folder}"


@dataclass(frozen=True)
class PartitionRef:
    """One partition of a staged table, as compaction addresses it."""

    bucket: str
    database: str
    table: str
    folder: str  # "k=v/.../" under the table folder ("" for an unpartitioned table)
    values: tuple[str, ...]

    @property
    def subject(self) -> str:
        return state_subject(self.database, self.table, self.folder)

    @property
    def prefix(self) -> str:
        """The partition's own folder (generation 0)."""
        return f"{STAGING_PREFIX}/{self.table}/{self.folder}"

    def location(self, generation: int) -> str:
        return f"s3://{self.bucket}/{generation_prefix(self.prefix, generation)}"


def partition_of(ref: DatasetRef, *, bucket: str, database: str) -> PartitionRef:
    """The partition a converted file of ``ref`` lands in."""
    folder = ref.output_prefix[len(f"{STAGING_PREFIX}/{ref.table_name}/") :]
    return PartitionRef(bucket, database, ref.table_name, folder, tuple(ref.partitions.values()))


def state_key(partition: PartitionRef) -> tuple[str, str, str]:
    """The audit key of the partition's compaction state."""
    return (STATE_KIND, partition.subject, STATE_VERSION)


def current_generation(
    audit: AuditStore,
    partition: PartitionRef,
    *,
    read: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None,
) -> int:
    """The generation new files of the partition go to (0 until it is first compacted).

    ``read``: items the caller read already (:meth:`AuditStore.get_many` with
    :func:`state_key`): the state is taken from there (absent: none) rather than read.
    """
    key = state_key(partition)
    item = read.get(key) if read is not None else audit.get(*key)
    return int(item.get("generation", 0)) if item else 0


def note_new_file(
    audit: AuditStore, partition: PartitionRef, *, target_bytes: int, min_files: int
) -> int:
    """A file of a compaction-enabled dataset landed in ``partition``: count it (the
    scheduled job compacts partitions with new files) and return the current generation."""
    item = audit.add_counts(
        STATE_KIND,
        partition.subject,
        STATE_VERSION,
        {"new_files": 1},
        defaults={
            "bucket": partition.bucket,
            "database": partition.database,
            "table": partition.table,
            "folder": partition.folder,
            "values": list(partition.values),
            "generation": 0,
            "step": "idle",
            "status": "idle",
            # the settings of the partition's first file: a changed document applies to
            # partitions created after it
            "target_bytes": target_bytes,
            "min_files": min_files,
        },
    )
    return int(item.get("generation", 0))


def follow_generation(
    s3: Any, audit: AuditStore, partition: PartitionRef, key: str, written_in: int
) -> str:
    """``key`` was written into generation ``written_in``; if the partition moved on while it
    was converted, copy it into the current generation, delete the stale copy and return
    the new key (else ``key``)."""
    now = current_generation(audit, partition)
    if now == written_in:
        return key
    name = key.rsplit("/", 1)[-1]
    moved = f"{generation_prefix(partition.prefix, now)}{name}"
    copy_object(
        s3, source={"Bucket": partition.bucket, "Key": key}, bucket=partition.bucket, key=moved
    )
    s3.delete_object(Bucket=partition.bucket, Key=key)
    logger.info("moved into the partition's new generation", extra={"from": key, "to": moved})
    return moved


# ------------------------------------------------------------------------------ the job


@dataclass
class Plan:
    generation: int
    next_generation: int
    inputs: list[str]  # every file of the current generation, in order
    merged: list[list[str]]  # groups of small inputs, one output file each
    carried: list[str]  # large inputs, copied as they are
    dropped: list[str] = field(default_factory=list)


@dataclass
class Result:
    partition: str
    status: str  # COMPACTED | NOTHING_TO_DO | SKIPPED | RESUMED | DEFERRED
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "status": self.status,
            "files_in": self.files_in,
            "files_out": self.files_out,
            "rows": self.rows,
            **({"reason": self.reason} if self.reason else {}),
        }


class Compactor:
    """Compacts partitions; clients are passed in. ``hook(step)`` is called after each
    step ("written", "switched", "deleted") so a test can look at the partition then."""

    def __init__(
        self,
        *,
        s3: Any,
        glue: Any,
        audit: AuditStore,
        hook: StepHook | None = None,
        workdir: str | None = None,
    ) -> None:
        self.s3 = s3
        self.glue = glue
        self.audit = audit
        self.hook = hook or (lambda _step: None)
        self.workdir = workdir

    # -- which partitions -----------------------------------------------------------------
    def partitions(self) -> Iterator[tuple[PartitionRef, dict[str, Any]]]:
        """Every partition of a compaction-enabled dataset, with its state."""
        for item in self.audit.of_kind(STATE_KIND):
            if item.get("version") != STATE_VERSION and not str(item.get("sk", "")).endswith(
                STATE_VERSION
            ):
                continue
            if "table" not in item:
                continue
            yield (
                PartitionRef(
                    str(item["bucket"]),
                    str(item["database"]),
                    str(item["table"]),
                    str(item.get("folder", "")),
                    tuple(str(v) for v in item.get("values", [])),
                ),
                item,
            )

    def run_all(self, remaining_ms: Callable[[], int] | None = None) -> list[Result]:
        """Compact every partition with new files (or a job to resume); with
        ``remaining_ms`` (the invocation's time left), a partition is not started with less
        than :data:`PARTITION_TIME_GUARD_MS` left: it is ``DEFERRED`` to the next run."""
        results = []
        for partition, state in self.partitions():
            if int(state.get("new_files", 0)) <= 0 and state.get("step", "idle") == "idle":
                continue
            if remaining_ms is not None and remaining_ms() < PARTITION_TIME_GUARD_MS:
                results.append(Result(partition.subject, "DEFERRED", reason="too little time left"))
                continue
            try:
                results.append(self.compact(partition))
            except RetryableError as exc:
                logger.warning(
                    "compaction of a partition deferred",
                    extra={"partition": partition.subject, "error": str(exc)},
                )
                results.append(Result(partition.subject, "DEFERRED", reason=str(exc)))
        return results

    # -- one partition ----------------------------------------------------------------------
    def compact(self, partition: PartitionRef) -> Result:
        """Compact (or resume compacting) one partition, under its lock."""
        self.audit.claim(
            STATE_KIND,
            partition.subject,
            LOCK_VERSION,
            lease_seconds=LOCK_SECONDS,
            done_statuses=(),
        )
        try:
            return self._compact(partition)
        finally:
            self.audit.release(STATE_KIND, partition.subject, LOCK_VERSION, note="done")

    def _state(self, partition: PartitionRef) -> dict[str, Any]:
        return self.audit.get(STATE_KIND, partition.subject, STATE_VERSION) or {}

    def _save(self, partition: PartitionRef, step: str, **attributes: Any) -> None:
        self.audit.record(
            STATE_KIND,
            partition.subject,
            STATE_VERSION,
            step,
            attributes={"step": step, **attributes},
        )

    def _compact(self, partition: PartitionRef) -> Result:
        state = self._state(partition)
        step = str(state.get("step", "idle"))
        resumed = step != "idle"
        if step == "idle":
            reason = self._not_compactable(partition)
            if reason:
                return Result(partition.subject, "SKIPPED", reason=reason)
            plan = self._plan(partition, state)
            if plan is None:
                return Result(partition.subject, "NOTHING_TO_DO")
            outputs, written, rows = self._write(partition, plan)
            self._save(
                partition,
                "written",
                next_generation=plan.next_generation,
                inputs=plan.inputs,
                outputs=outputs,
                members=written,
                rows=rows,
                new_files_seen=int(state.get("new_files", 0)),
            )
            self.hook("written")
            state = self._state(partition)
        generation = int(state.get("generation", 0))
        target = int(state["next_generation"])
        inputs = [str(k) for k in state.get("inputs", [])]
        if state.get("step") == "written":
            self._copy_late(partition, generation, target, inputs)
            self._switch(partition, generation, target)
            self._save(partition, "switched")
            self.hook("switched")
            state = self._state(partition)
        late = self._copy_late(partition, generation, target, inputs)
        members: dict[str, list[Any]] = dict(state.get("members", {}))
        self._record_mapping(members, late, target)
        old = self._files(partition, generation)
        self._delete(partition.bucket, old)
        self._save(
            partition,
            "idle",
            generation=target,
            inputs=[],
            outputs=[],
            members={},
            dropped=[],
        )
        seen = int(state.get("new_files_seen", 0))
        if seen:
            self.audit.add_counts(
                STATE_KIND, partition.subject, STATE_VERSION, {"new_files": -seen}
            )
        self.hook("deleted")
        count("PartitionsCompacted")
        outputs_now = list(state.get("outputs", []))
        return Result(
            partition.subject,
            "RESUMED" if resumed else "COMPACTED",
            files_in=len(inputs),
            files_out=len(outputs_now),
            rows=int(state.get("rows", 0)),
        )

    def _not_compactable(self, partition: PartitionRef) -> str:
        try:
            table = self.glue.get_table(DatabaseName=partition.database, Name=partition.table)
        except ClientError as exc:
            if error_code(exc) == "EntityNotFoundException":
                return "the table is not in the catalog yet"
            raise RetryableError(f"reading table {partition.table}: {error_code(exc)}") from exc
        params = table["Table"].get("Parameters") or {}
        if str(params.get("projection.enabled", "")).lower() == "true":
            return "partition projection computes locations from the layout: not compacted"
        if not table["Table"].get("PartitionKeys"):
            return "unpartitioned tables are not compacted (the table location would move)"
        return ""

    def _files(self, partition: PartitionRef, generation: int) -> list[str]:
        """The data files of one generation (sorted: a deterministic plan)."""
        return list(self._sizes(partition, generation))

    def _sizes(self, partition: PartitionRef, generation: int) -> dict[str, int]:
        """The data files of one generation and their sizes, sorted by key."""
        prefix = generation_prefix(partition.prefix, generation)
        sizes: dict[str, int] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=partition.bucket, Prefix=prefix
        ):
            for obj in page.get("Contents") or []:
                if in_generation(obj["Key"], partition.prefix, generation) and obj["Size"] > 0:
                    sizes[str(obj["Key"])] = int(obj["Size"])
        return dict(sorted(sizes.items()))

    def _plan(self, partition: PartitionRef, state: Mapping[str, Any]) -> Plan | None:
        generation = int(state.get("generation", 0))
        target = int(state.get("target_bytes", 128 * 1024**2))
        min_files = int(state.get("min_files", 4))
        sizes = self._sizes(partition, generation)
        small = [k for k, size in sizes.items() if size < target * SMALL_FRACTION]
        if len(small) < max(2, min_files):
            return None
        groups: list[list[str]] = [[]]
        total = 0
        for key in small:
            if groups[-1] and total + sizes[key] > target:
                groups.append([])
                total = 0
            groups[-1].append(key)
            total += sizes[key]
        return Plan(
            generation=generation,
            next_generation=generation + 1,
            inputs=list(sizes),
            merged=groups,
            carried=[k for k in sizes if k not in small],
        )

    def _write(
        self, partition: PartitionRef, plan: Plan
    ) -> tuple[list[str], dict[str, list[Any]], int]:
        """Write the next generation in full; returns its keys, where each input's rows went
        (``old key -> [new key, first row, row count]``) and the rows written."""
        target_prefix = generation_prefix(partition.prefix, plan.next_generation)
        # an earlier attempt that crashed while writing may have left files: start clean
        self._delete(partition.bucket, self._files(partition, plan.next_generation))
        outputs: list[str] = []
        members: dict[str, list[Any]] = {}
        rows_total = 0
        with tempfile.TemporaryDirectory(prefix="lakegov-compact-", dir=self.workdir) as tmp:
            for index, group in enumerate(plan.merged):
                key = f"{target_prefix}part-{plan.next_generation:06d}-{index:04d}.parquet"
                tables = []
                first = 0
                for source in group:
                    local = os.path.join(tmp, "in.parquet")
                    self.s3.download_file(partition.bucket, source, local)
                    table = pq.read_table(local)
                    tables.append(table)
                    members[source] = [key, first, table.num_rows]
                    first += table.num_rows
                try:
                    merged = pa.concat_tables(tables, promote_options="permissive")
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise PermanentError(
                        f"{partition.subject}: files with incompatible schemas: {exc}"
                    ) from exc
                out = os.path.join(tmp, "out.parquet")
                pq.write_table(merged, out, compression="snappy")
                upload_file(self.s3, out, partition.bucket, key)
                outputs.append(key)
                rows_total += merged.num_rows
            for source in plan.carried:
                key = f"{target_prefix}{source.rsplit('/', 1)[-1]}"
                copy_object(
                    self.s3,
                    source={"Bucket": partition.bucket, "Key": source},
                    bucket=partition.bucket,
                    key=key,
                )
                members[source] = [key, 0, -1]
                outputs.append(key)
        return outputs, members, rows_total

    def _copy_late(
        self, partition: PartitionRef, generation: int, target: int, inputs: Sequence[str]
    ) -> list[tuple[str, str]]:
        """Files converted into the old generation after the plan: copied into the new one."""
        planned = set(inputs)
        copied = []
        for source in self._files(partition, generation):
            if source in planned:
                continue
            key = f"{generation_prefix(partition.prefix, target)}{source.rsplit('/', 1)[-1]}"
            copy_object(
                self.s3,
                source={"Bucket": partition.bucket, "Key": source},
                bucket=partition.bucket,
                key=key,
            )
            copied.append((source, key))
        return copied

    def _switch(self, partition: PartitionRef, generation: int, target: int) -> None:
        """Point the partition at generation ``target``: one UpdatePartition."""
        try:
            found = self.glue.get_partition(
                DatabaseName=partition.database,
                TableName=partition.table,
                PartitionValues=list(partition.values),
            )["Partition"]
        except ClientError as exc:
            raise RetryableError(
                f"reading partition {partition.subject}: {error_code(exc)}"
            ) from exc
        storage = dict(found.get("StorageDescriptor") or {})
        current = str(storage.get("Location", ""))
        wanted = partition.location(target)
        if current.rstrip("/") == wanted.rstrip("/"):
            return  # a resumed job already switched it
        if current.rstrip("/") != partition.location(generation).rstrip("/"):
            raise PermanentError(
                f"{partition.subject}: the catalog points at {current}, not at generation "
                f"{generation} ({partition.location(generation)}); not switching"
            )
        storage["Location"] = wanted if current.endswith("/") else wanted.rstrip("/")
        partition_input: dict[str, Any] = {
            "Values": list(found["Values"]),
            "StorageDescriptor": storage,
        }
        if found.get("Parameters"):
            partition_input["Parameters"] = found["Parameters"]
        self.glue.update_partition(
            DatabaseName=partition.database,
            TableName=partition.table,
            PartitionValueList=list(partition.values),
            PartitionInput=partition_input,
        )
        logger.info(
            "partition switched to its new generation",
            extra={"partition": partition.subject, "location": wanted},
        )

    def _record_mapping(
        self, members: Mapping[str, Sequence[Any]], late: Sequence[tuple[str, str]], target: int
    ) -> None:
        """old key -> new key (and the rows' place in it), for every file of the old set."""
        for old, (new, first, rows) in sorted(members.items()):
            self.audit.record(
                MAPPING_KIND,
                old,
                "-",
                "COMPACTED",
                note=f"rows now in {new}",
                attributes={"now_in": new, "first_row": first, "rows": rows, "generation": target},
            )
        for old, new in late:
            self.audit.record(
                MAPPING_KIND,
                old,
                "-",
                "MOVED",
                note=f"converted during a compaction; moved to {new}",
                attributes={"now_in": new, "generation": target},
            )

    def _delete(self, bucket: str, keys: Sequence[str]) -> None:
        delete_keys(self.s3, bucket, keys)


def resolve_output_key(audit: AuditStore, key: str) -> str:
    """Where the rows of a ``FileConverted`` output key are now (following compactions)."""
    seen = set()
    while key not in seen:
        seen.add(key)
        item = audit.get(MAPPING_KIND, key, "-")
        if not item or not item.get("now_in"):
            return key
        key = str(item["now_in"])
    return key


__all__ = [
    "Compactor",
    "PartitionRef",
    "current_generation",
    "follow_generation",
    "generation_folder",
    "key_generation",
    "note_new_file",
    "partition_of",
    "resolve_output_key",
    "state_key",
]
