"""The Lambda engine: a landed object's targets converted to Parquet in ``/tmp``, then uploaded.

Steps 2 and 3 of :mod:`lakegov.ingest.service`'s order of effects, for a file converted in
Lambda (the Athena engine is :mod:`lakegov.ingest.athena`): every target (a workbook has
one per sheet) is streamed through the converter into a local temporary file before
anything is uploaded, so a sheet that is rejected rejects the workbook and leaves no other
sheet's output behind; then each output is uploaded under its final, deterministic key, in
its partition's generation folder (compaction), with the rows it rejected beside it. What
the targets' conversion reads from the audit table is read in one BatchGetItem.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from lakegov.audit import AuditStore
from lakegov.compaction.service import (
    PartitionRef,
    current_generation,
    follow_generation,
    note_new_file,
    partition_of,
    state_key,
)
from lakegov.convert.engine import ConversionResult
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile
from lakegov.ingest.landed import LakeVersions, LandedObject
from lakegov.layout import DatasetRef
from lakegov.s3 import upload_file


@dataclass
class ConvertedTarget:
    """One target of a landed file's conversion (a workbook has one per sheet)."""

    ref: DatasetRef
    options: DatasetOptions
    out_path: str
    exc_path: str
    output_key: str
    exceptions_key: str
    previous: pa.Schema | None
    partition: PartitionRef
    generation: int
    result: ConversionResult | None = None
    wrote_exceptions: bool = False

    @property
    def converted(self) -> ConversionResult:
        assert self.result is not None
        return self.result

    @property
    def written(self) -> list[str]:
        return [self.output_key, *([self.exceptions_key] if self.wrote_exceptions else [])]


@dataclass(frozen=True)
class LambdaEngine:
    """What converting in Lambda needs; the converter builds one per landed object."""

    s3: Any
    audit: AuditStore
    versions: LakeVersions
    convert_fn: Callable[..., ConversionResult]
    formatted_bucket: str
    database: str  # the Glue database of formatted_stg/

    def partition(self, ref: DatasetRef) -> PartitionRef:
        return partition_of(ref, bucket=self.formatted_bucket, database=self.database)

    def read_state(
        self, targets: list[tuple[DatasetRef, DatasetOptions]]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        """What the targets' conversion reads from the audit table (each table's schema,
        each partition's compaction state), in one BatchGetItem."""
        keys = {self.versions.schema_key(ref.table_name) for ref, _ in targets}
        keys |= {
            state_key(self.partition(ref))
            for ref, options in targets
            if not options.compaction.enabled  # those are counted, their answer written
        }
        return self.audit.get_many(keys)

    def generation(
        self,
        ref: DatasetRef,
        options: DatasetOptions,
        read: dict[tuple[str, str, str], dict[str, Any]],
    ) -> tuple[PartitionRef, int]:
        """The partition a target's output goes to and the generation folder it goes in."""
        partition = self.partition(ref)
        if options.compaction.enabled:
            generation = note_new_file(
                self.audit,
                partition,
                target_bytes=options.compaction.target_bytes,
                min_files=options.compaction.min_files,
            )
        else:  # a partition compacted before compaction was turned off stays at its generation
            generation = current_generation(self.audit, partition, read=read)
        return partition, generation

    def convert(
        self,
        landed: LandedObject,
        body: Any,
        targets: list[tuple[DatasetRef, DatasetOptions]],
        token: str,
    ) -> list[ConvertedTarget]:
        """Each target converted from ``body`` (the landed object's stream, closed here) and
        uploaded; raises :class:`~lakegov.errors.RejectedFile` for a bad file (nothing of it
        uploaded)."""
        read = self.read_state(targets)
        done: list[ConvertedTarget] = []
        with tempfile.TemporaryDirectory(prefix="lakegov-") as workdir:
            local: str | None = None
            if len(targets) > 1:  # one workbook, several sheets: read from S3 once
                local = os.path.join(workdir, "landed")
                try:
                    with open(local, "wb") as spool:
                        shutil.copyfileobj(body, spool, 1024 * 1024)
                finally:
                    body.close()
            # every target is converted before anything is uploaded: a sheet that is
            # rejected rejects the workbook, and leaves no other sheet's output behind
            for i, (target, target_options) in enumerate(targets):
                partition, generation = self.generation(target, target_options, read)
                converted = ConvertedTarget(
                    target,
                    target_options,
                    out_path=os.path.join(workdir, f"out-{i}.parquet"),
                    exc_path=os.path.join(workdir, f"exceptions-{i}.jsonl"),
                    output_key=target.output_key(token, generation=generation),
                    exceptions_key=target.exceptions_key(token),
                    previous=self.versions.previous_schema(target.table_name, read=read),
                    partition=partition,
                    generation=generation,
                )
                source = body if local is None else open(local, "rb")  # noqa: SIM115 - closed below
                exc_handles: list[Any] = []

                def open_exceptions(
                    path: str = converted.exc_path, handles: list[Any] = exc_handles
                ) -> Any:
                    handle = open(path, "wb")  # noqa: SIM115 - closed below, after the conversion
                    handles.append(handle)
                    return handle

                try:
                    with open(converted.out_path, "wb") as sink:
                        converted.result = self.convert_fn(
                            source,
                            sink,
                            options=target_options,
                            source_name=landed.key,
                            previous_schema=converted.previous,
                            exceptions_sink=open_exceptions,
                            workdir=workdir,
                        )
                except RejectedFile as rejected:
                    if target_options.sheet is None:
                        raise
                    raise RejectedFile(
                        rejected.reason_code,
                        f"sheet {target_options.sheet!r}: {rejected.reason}",
                        rejected.bad_lines,
                    ) from rejected
                finally:
                    source.close()
                    for handle in exc_handles:
                        handle.close()
                converted.wrote_exceptions = (
                    bool(exc_handles) and os.path.getsize(converted.exc_path) > 0
                )
                done.append(converted)
            for converted in done:
                upload_file(
                    self.s3, converted.out_path, self.formatted_bucket, converted.output_key
                )
                if converted.options.compaction.enabled or converted.generation:
                    # compacted while this file converted: into the partition's new generation
                    converted.output_key = follow_generation(
                        self.s3,
                        self.audit,
                        converted.partition,
                        converted.output_key,
                        converted.generation,
                    )
                if converted.wrote_exceptions:
                    upload_file(
                        self.s3, converted.exc_path, self.formatted_bucket, converted.exceptions_key
                    )
        return done
