"""Files too big for one Lambda: converted by Athena (UNLOAD to Parquet), tracked as a job.

The same request as the Lambda path, handed to the serverless distributed engine:

1. ``start``: the column types are decided from the head of the object (its first 64 KiB,
   whole lines only, read by the Lambda path's own converter, so both engines type a
   column alike; a dataset's declared schema wins), then a temporary external table over
   the object's folder (every column text, the header skipped; JSON through the OpenX
   SerDe) is created with a DDL query;
2. on "Athena Query State Change" SUCCEEDED for the DDL: ``UNLOAD (SELECT TRY_CAST(...)
   ... WHERE "$path" = <the object>) TO <a scratch folder>`` as Parquet, with the types
   decided in step 1 (a value that does not fit its type becomes NULL);
3. on SUCCEEDED for the UNLOAD: a count query (rows, and rows holding a value that did not
   fit its type);
4. on SUCCEEDED for the count: the temporary table is dropped, the Parquet files moved
   into the dataset's partition folder, the key's previous version's output replaced (the
   same rule as the Lambda path, :class:`~lakegov.ingest.landed.LakeVersions`), the file
   audited as PROCESSED and ``FileConverted`` published with ``engine: athena`` and the
   real row count, so the catalog and products cannot tell the engines apart.

A FAILED or CANCELLED query quarantines the file with Athena's reason, like any bad file.
Each step is keyed in the audit table by its query execution id, so a duplicate state
change event advances nothing twice.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from lakegov.audit import AuditStore
from lakegov.convert.dialect import CsvDialect, sniff_csv_dialect
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile
from lakegov.events import EventPublisher, utc_now
from lakegov.ingest.landed import LakeVersions, LandedObject, file_converted, reject_landed
from lakegov.layout import DatasetRef, normalize_identifier
from lakegov.observability import count, logger
from lakegov.s3 import copy_object
from lakegov.schema import declared_type, glue_type, schema_fingerprint
from lakegov.settings import Settings

HEAD_BYTES = 64 * 1024
# Types Athena can TRY_CAST a text column to; anything else (nested JSON) stays text
_CASTABLE = re.compile(
    r"^(boolean|tinyint|smallint|int|bigint|float|double|date|timestamp|decimal\(\d+,\d+\))$"
)


@dataclass(frozen=True)
class AthenaJob:
    bucket: str
    key: str
    version: str
    dataset: str
    table: str
    partitions: dict[str, str]
    temp_database: str
    temp_table: str
    columns: list[str]
    output_prefix: str
    partition_prefix: str
    output_bucket: str
    types: list[str] = field(default_factory=list)  # Athena types, one per column
    version_id: str | None = None
    etag: str | None = None
    sequencer: str = ""
    last_modified: str = ""
    catalog_mode: str | None = None
    schema_changes: str = "additive"
    rows: int = 0
    bad_rows: int = 0

    def to_item(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AthenaJob:
        values = {k: item[k] for k in cls.__dataclass_fields__ if k in item}
        for number in ("rows", "bad_rows"):
            if number in values:
                values[number] = int(values[number])
        return cls(**values)

    @property
    def landed(self) -> LandedObject:
        return LandedObject(
            self.bucket,
            self.key,
            etag=self.etag,
            version_id=self.version_id,
            sequencer=self.sequencer,
        )

    @property
    def arrow_schema(self) -> pa.Schema:
        """The Parquet files' schema: each column as the type it was cast to."""
        types = self.types or ["string"] * len(self.columns)
        return pa.schema(
            [pa.field(n, declared_type(t)) for n, t in zip(self.columns, types, strict=True)]
        )


def _quote_sql(text: str) -> str:
    return text.replace("'", "''")


def csv_dialect(head: bytes, delimiter: str | None) -> CsvDialect:
    """The file's dialect, as the Lambda converter detects it; refused where Athena's
    CSV SerDe cannot read it (it takes a one-character delimiter and LF line ends)."""
    dialect = sniff_csv_dialect(head, DatasetOptions(delimiter=delimiter))
    if len(dialect.delimiter) != 1 or dialect.comment or dialect.newline == "\r":
        raise RejectedFile(
            "unsupported_format",
            f"the file is too large for the Lambda converter and Athena's CSV reader cannot "
            f"read its dialect ({dialect.describe()}): split it, or re-export it with a "
            "one-character delimiter, LF or CRLF line ends and no comment lines",
        )
    return dialect


def header_columns(head: bytes, fmt: str, delimiter: str | None) -> list[str]:
    """Column names from the first bytes of the file: the CSV header or the JSON keys."""
    if fmt != "json":
        return list(csv_dialect(head, delimiter).columns)
    text = head.decode("utf-8-sig", errors="replace")
    if text.lstrip()[:1] == "[":
        # Athena's JSON SerDe reads one object per line: a JSON array is not JSON Lines
        raise RejectedFile(
            "unsupported_format",
            "the file is too large for the Lambda converter and is a JSON array, which "
            "Athena's JSON reader cannot read: land it as JSON Lines (one object per line) "
            "or in smaller files",
        )
    keys: list[str] = []
    for line in text.splitlines()[:-1] or text.splitlines():
        line = line.strip().rstrip(",")
        if not line.startswith("{"):
            continue
        try:
            for key in json.loads(line):
                if key not in keys:
                    keys.append(key)
        except json.JSONDecodeError:
            continue
    if not keys:
        raise RejectedFile("malformed", "no JSON object found in the first 64 KiB")
    return keys


def head_types(
    head: bytes,
    columns: list[str],
    *,
    source_name: str,
    options: DatasetOptions,
    previous: pa.Schema | None,
    complete: bool,
) -> list[str]:
    """The Athena type of each column, decided from the file's head.

    A declared schema (``datasets/`` document) gives the types; otherwise the head's whole
    lines go through the Lambda path's converter, with the dataset's previous schema, so
    that a column is typed as the Lambda path would type it. Types Athena cannot cast text
    to (nested JSON) stay ``string``.
    """
    declared = options.declared_schema()
    if declared is not None:
        by_name = {normalize_identifier(f.name, prefix="c"): f.type for f in declared}
        found = {name: by_name.get(name) for name in columns}
    else:
        sample = head if complete else head[: head.rfind(b"\n") + 1]
        with tempfile.TemporaryDirectory(prefix="lakegov-head-") as workdir:
            sink = io.BytesIO()
            # here only, in the convert function: the Athena state-change function, which
            # imports this module too, never loads DuckDB
            from lakegov.convert.engine import convert

            result = convert(
                io.BytesIO(sample),
                sink,
                options=replace(options, bad_rows="exceptions"),
                source_name=source_name,
                previous_schema=previous,
                exceptions_sink=lambda: io.BytesIO(),
                workdir=workdir,
            )
        by_field = {f.name: f.type for f in result.schema}
        found = {name: by_field.get(name) for name in columns}
    types = []
    for name in columns:
        arrow = found.get(name)
        athena = glue_type(arrow) if arrow is not None else "string"
        types.append(athena if _CASTABLE.match(athena) else "string")
    return types


def ddl(job: AthenaJob, fmt: str, dialect: CsvDialect | None, raw_columns: list[str]) -> str:
    """The temporary table: normalised column names, all text.

    CSV columns are positional (the preamble and header lines are skipped), so any names
    do; JSON keys are mapped to the normalised names with the OpenX SerDe's
    ``mapping.<column>`` properties.
    """
    folder = job.key.rsplit("/", 1)[0] + "/" if "/" in job.key else ""
    cols = ", ".join(f"`{c}` string" for c in job.columns)
    location = f"s3://{job.bucket}/{folder}"
    table = f"`{job.temp_database}`.`{job.temp_table}`"
    if fmt == "json" or dialect is None:
        mappings = ", ".join(
            f"'mapping.{name}' = '{_quote_sql(raw)}'"
            for raw, name in zip(raw_columns, job.columns, strict=True)
        )
        return (
            f"CREATE EXTERNAL TABLE {table} ({cols}) "
            "ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe' "
            f"WITH SERDEPROPERTIES ('case.insensitive' = 'false', {mappings}) "
            f"LOCATION '{_quote_sql(location)}'"
        )
    sep = dialect.delimiter.replace("\t", "\\t")
    quote = _quote_sql(dialect.quote or '"')
    escape = (dialect.escape or "\\").replace("\\", "\\\\")  # a backslash in a Hive literal
    skip = dialect.skip_lines + dialect.header_lines
    return (
        f"CREATE EXTERNAL TABLE {table} ({cols}) "
        "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' "
        f"WITH SERDEPROPERTIES ('separatorChar' = '{sep}', 'quoteChar' = '{quote}', "
        f"'escapeChar' = '{escape}') "
        f"LOCATION '{_quote_sql(location)}' TBLPROPERTIES ('skip.header.line.count' = '{skip}')"
    )


def _typed(name: str, athena_type: str) -> str:
    """The column as its decided type: empty text is NULL, a value that does not fit is NULL."""
    text = f"NULLIF(\"{name}\", '')"
    return text if athena_type == "string" else f"TRY_CAST({text} AS {athena_type})"


def _where(job: AthenaJob) -> str:
    return f"WHERE \"$path\" = '{_quote_sql(f's3://{job.bucket}/{job.key}')}'"


def _source(job: AthenaJob) -> str:
    return f'"{job.temp_database}"."{job.temp_table}"'


def unload(job: AthenaJob) -> str:
    """UNLOAD only this object's rows (``$path``), typed, to a fresh folder, as Parquet."""
    types = job.types or ["string"] * len(job.columns)
    select = ", ".join(
        f'{_typed(name, t)} AS "{name}"' for name, t in zip(job.columns, types, strict=True)
    )
    return (
        f"UNLOAD (SELECT {select} FROM {_source(job)} {_where(job)}) "  # noqa: S608 - names normalised, literals quoted
        f"TO 's3://{job.output_bucket}/{_quote_sql(job.output_prefix)}' "
        "WITH (format = 'PARQUET', compression = 'SNAPPY')"
    )


def count_query(job: AthenaJob) -> str:
    """Rows of the object, and rows with a value that did not fit its column's type."""
    types = job.types or ["string"] * len(job.columns)
    bad = [
        f"(NULLIF(\"{name}\", '') IS NOT NULL AND {_typed(name, t)} IS NULL)"
        for name, t in zip(job.columns, types, strict=True)
        if t != "string"
    ]
    bad_rows = f"count_if({' OR '.join(bad)})" if bad else "0"
    return f"SELECT count(*) AS row_count, {bad_rows} AS bad_rows FROM {_source(job)} {_where(job)}"  # noqa: S608


class AthenaConverter:
    """Starts and advances Athena conversions (the Athena client and S3 are passed in)."""

    def __init__(
        self,
        *,
        athena: Any,
        s3: Any,
        audit: AuditStore,
        publisher: EventPublisher,
        settings: Settings,
    ) -> None:
        self.athena = athena
        self.s3 = s3
        self.audit = audit
        self.publisher = publisher
        self.settings = settings
        self.versions = LakeVersions(s3=s3, audit=audit, formatted_bucket=settings.formatted_bucket)

    def _query(self, sql: str) -> str:
        response = self.athena.start_query_execution(
            QueryString=sql,
            WorkGroup=self.settings.athena_workgroup,
            ResultConfiguration={
                "OutputLocation": f"s3://{self.settings.formatted_bucket}/_athena_results/"
            },
        )
        return str(response["QueryExecutionId"])

    def start(
        self,
        *,
        landed: LandedObject,
        ref: DatasetRef,
        fmt: str,
        delimiter: str | None,
        options: DatasetOptions | None = None,
    ) -> str:
        options = options or DatasetOptions()
        kwargs = {"VersionId": landed.version_id} if landed.version_id else {}
        obj = self.s3.get_object(
            Bucket=landed.bucket, Key=landed.key, Range=f"bytes=0-{HEAD_BYTES - 1}", **kwargs
        )
        head = obj["Body"].read()
        last_modified = obj["LastModified"].isoformat() if obj.get("LastModified") else ""
        dialect = csv_dialect(head, delimiter) if fmt != "json" else None
        raw_columns = list(dialect.columns) if dialect else header_columns(head, fmt, delimiter)
        columns = [normalize_identifier(c, prefix="c") for c in raw_columns]
        types = head_types(
            head,
            columns,
            source_name=landed.key,
            options=options,
            previous=self.versions.previous_schema(ref.table_name),
            complete=len(head) < HEAD_BYTES,
        )
        token = re.sub(r"[^a-z0-9]", "", landed.version.lower())[:16] or "x"
        job = AthenaJob(
            bucket=landed.bucket,
            key=landed.key,
            version=landed.version,
            dataset=ref.dataset_id,
            table=ref.table_name,
            partitions=dict(ref.partitions),
            temp_database=self.settings.database("athena_tmp"),
            temp_table=f"{ref.table_name}_{token}"[:120],
            columns=columns,
            types=types,
            # UNLOAD needs an empty folder; it goes to a scratch prefix (expired by the
            # bucket's lifecycle) and the files are then moved into the partition folder,
            # where query engines read them (they skip folders starting with "_").
            output_prefix=f"_tmp/athena/{ref.table_name}/{token}/",
            partition_prefix=ref.output_prefix,
            output_bucket=self.settings.formatted_bucket,
            version_id=landed.version_id,
            etag=landed.etag,
            sequencer=landed.sequencer,
            last_modified=last_modified,
            catalog_mode=options.catalog_mode,
            schema_changes=options.schema_changes,
        )
        query_id = self._query(ddl(job, fmt, dialect, raw_columns))
        self.audit.record(
            "athena",
            query_id,
            "ddl",
            "RUNNING",
            attributes={"job": job.to_item(), "raw_columns": raw_columns},
        )
        self.audit.record(
            "file",
            landed.subject,
            landed.version,
            "CONVERTING",
            note=f"handed to Athena (query {query_id})",
            attributes={"engine": "athena"},
        )
        count("FilesHandedToAthena")
        return query_id

    def on_state_change(self, query_id: str, state: str, reason: str | None = None) -> str:
        """Advance the job one step; returns what happened (for logs and tests).

        ``reason`` of a failed query: by default Athena's ``StateChangeReason``, asked only
        for a query of a job still running.
        """
        for stage in ("ddl", "unload", "count"):
            item = self.audit.get("athena", query_id, stage)
            if item:
                break
        else:
            return "unknown query"
        if item.get("status") != "RUNNING":
            return "duplicate"
        job = AthenaJob.from_item(item["job"])
        if state in ("FAILED", "CANCELLED"):
            if reason is None:
                execution = self.athena.get_query_execution(QueryExecutionId=query_id)
                reason = str(execution["QueryExecution"]["Status"].get("StateChangeReason", ""))
            self.audit.record("athena", query_id, stage, state, note=reason[:500])
            self._drop(job)
            return self._reject(job, reason or f"Athena query {state.lower()}")
        if state != "SUCCEEDED":
            return "ignored"
        self.audit.record("athena", query_id, stage, "SUCCEEDED")
        if stage == "ddl":
            return self._next(job, "unload", unload(job), "unloading")
        if stage == "unload":
            return self._next(job, "count", count_query(job), "counting")
        rows, bad_rows = self._counts(query_id)
        job = replace(job, rows=rows, bad_rows=bad_rows)
        self._drop(job)
        return self._finish(job)

    def _next(self, job: AthenaJob, stage: str, sql: str, outcome: str) -> str:
        query_id = self._query(sql)
        self.audit.record("athena", query_id, stage, "RUNNING", attributes={"job": job.to_item()})
        return outcome

    def _counts(self, query_id: str) -> tuple[int, int]:
        rows = self.athena.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
        values = [d.get("VarCharValue") for d in rows[1]["Data"]]  # rows[0]: the header
        return int(values[0] or 0), int(values[1] or 0)

    def _finish(self, job: AthenaJob) -> str:
        landed = job.landed
        keys = self._publish_files(job)
        if not self.versions.make_current(landed, job.last_modified, keys):
            return "superseded"
        schema = job.arrow_schema
        fingerprint = schema_fingerprint(schema)
        self.versions.record_schema(job.table, schema, fingerprint)
        detail = file_converted(
            landed,
            dataset=job.dataset,
            table=job.table,
            partitions=job.partitions,
            output_bucket=job.output_bucket,
            output_keys=keys or [job.output_prefix],
            schema=schema,
            fingerprint=fingerprint,
            rows=job.rows,
            values_nulled=job.bad_rows,  # cast to NULL in the UNLOAD; no row is set aside
            schema_changes=job.schema_changes,
            catalog_mode=job.catalog_mode,
            engine="athena",
        )
        self.publisher.publish("FileConverted", detail)
        self.audit.record(
            "file",
            landed.subject,
            job.version,
            "PROCESSED",
            note=f"Athena UNLOAD: {job.rows} rows ({job.bad_rows} with a value that did not "
            f"fit its type), {len(keys)} file(s)",
            attributes={
                "output_keys": keys,
                "engine": "athena",
                "rows_out": job.rows,
                "bad_rows": job.bad_rows,
                "finished_at": utc_now(),
            },
        )
        count("FilesConverted")
        count("RowsConverted", job.rows)
        return "converted"

    def _publish_files(self, job: AthenaJob) -> list[str]:
        """Move UNLOAD's files from the scratch prefix into the dataset's partition folder."""
        unloaded = [
            (o["Key"], int(o["Size"]))
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=job.output_bucket, Prefix=job.output_prefix
            )
            for o in page.get("Contents", [])
        ]
        stem = job.key.rsplit("/", 1)[-1].split(".", 1)[0] or "part"
        token = job.output_prefix.rstrip("/").rsplit("/", 1)[-1]
        keys = []
        for n, (source, size) in enumerate(sorted(unloaded)):
            target = f"{job.partition_prefix}{normalize_identifier(stem, prefix='f')}-{token}-{n}.parquet"
            copy_object(
                self.s3,
                source={"Bucket": job.output_bucket, "Key": source},
                bucket=job.output_bucket,
                key=target,
                size=size,  # from the listing: no HeadObject per file
            )
            self.s3.delete_object(Bucket=job.output_bucket, Key=source)
            keys.append(target)
        return keys

    def _drop(self, job: AthenaJob) -> None:
        try:
            self._query(f"DROP TABLE IF EXISTS `{job.temp_database}`.`{job.temp_table}`")
        except Exception:  # the temporary table is harmless; a later run may drop it
            logger.warning(
                "could not drop the temporary Athena table", extra={"table": job.temp_table}
            )

    def _reject(self, job: AthenaJob, reason: str) -> str:
        landed = LandedObject(
            bucket=job.bucket, key=job.key, etag=job.etag, version_id=job.version_id
        )
        rejected = RejectedFile("malformed", f"Athena could not convert it: {reason}")
        reject_landed(
            landed,
            rejected,
            s3=self.s3,
            audit=self.audit,
            publisher=self.publisher,
            dataset=job.dataset,
            note_prefix="athena: ",
        )
        return "rejected"
