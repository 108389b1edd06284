"""Files too big for one Lambda: converted by Athena (UNLOAD to Parquet), tracked as a job.

The same request as the Lambda path, handed to the serverless distributed engine:

1. ``start``: a temporary external table over the object's folder (all columns as text,
   the header skipped; JSON through the OpenX SerDe), created with a DDL query;
2. on "Athena Query State Change" SUCCEEDED for the DDL: ``UNLOAD (SELECT ... WHERE
   "$path" = <the object>) TO <a fresh folder under the dataset's partition>`` as Parquet;
3. on SUCCEEDED for the UNLOAD: the temporary table is dropped, the file audited as
   PROCESSED and ``FileConverted`` published with ``engine: athena`` — the same event the
   Lambda path ends with, so the catalog and products cannot tell the difference.

A FAILED or CANCELLED query quarantines the file with Athena's reason, like any bad file.
Each step is keyed in the audit table by its query execution id, so a duplicate state
change event advances nothing twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from lakegov.audit import AuditStore
from lakegov.convert.dialect import CsvDialect, sniff_csv_dialect
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile
from lakegov.events import EventPublisher, utc_now
from lakegov.layout import DatasetRef, normalize_identifier
from lakegov.observability import count, logger

HEAD_BYTES = 64 * 1024


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

    def to_item(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AthenaJob:
        return cls(**{k: item[k] for k in cls.__dataclass_fields__})


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


def unload(job: AthenaJob) -> str:
    """UNLOAD only this object's rows (``$path``) to a fresh folder, as Parquet."""
    select = ", ".join(f'"{name}"' for name in job.columns)
    path = f"s3://{job.bucket}/{job.key}"
    return (
        f'UNLOAD (SELECT {select} FROM "{job.temp_database}"."{job.temp_table}" '  # noqa: S608 - names normalised, literals quoted
        f"WHERE \"$path\" = '{_quote_sql(path)}') "
        f"TO 's3://{job.output_bucket}/{_quote_sql(job.output_prefix)}' "
        "WITH (format = 'PARQUET', compression = 'SNAPPY')"
    )


class AthenaConverter:
    """Starts and advances Athena conversions (the Athena client and S3 are passed in)."""

    def __init__(
        self, *, athena: Any, s3: Any, audit: AuditStore, publisher: EventPublisher, settings: Any
    ) -> None:
        self.athena = athena
        self.s3 = s3
        self.audit = audit
        self.publisher = publisher
        self.settings = settings

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
        bucket: str,
        key: str,
        version: str,
        ref: DatasetRef,
        fmt: str,
        delimiter: str | None,
    ) -> str:
        head = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")[
            "Body"
        ].read()
        dialect = csv_dialect(head, delimiter) if fmt != "json" else None
        raw_columns = list(dialect.columns) if dialect else header_columns(head, fmt, delimiter)
        token = re.sub(r"[^a-z0-9]", "", version.lower())[:16] or "x"
        job = AthenaJob(
            bucket=bucket,
            key=key,
            version=version,
            dataset=ref.dataset_id,
            table=ref.table_name,
            partitions=dict(ref.partitions),
            temp_database=self.settings.database("athena_tmp"),
            temp_table=f"{ref.table_name}_{token}"[:120],
            columns=[normalize_identifier(c, prefix="c") for c in raw_columns],
            # UNLOAD needs an empty folder; it goes to a scratch prefix (expired by the
            # bucket's lifecycle) and the files are then moved into the partition folder,
            # where query engines read them (they skip folders starting with "_").
            output_prefix=f"_tmp/athena/{ref.table_name}/{token}/",
            partition_prefix=ref.output_prefix,
            output_bucket=self.settings.formatted_bucket,
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
            f"s3://{bucket}/{key}",
            version,
            "CONVERTING",
            note=f"handed to Athena (query {query_id})",
            attributes={"engine": "athena"},
        )
        count("FilesHandedToAthena")
        return query_id

    def on_state_change(self, query_id: str, state: str, reason: str = "") -> str:
        """Advance the job one step; returns what happened (for logs and tests)."""
        for stage in ("ddl", "unload"):
            item = self.audit.get("athena", query_id, stage)
            if item:
                break
        else:
            return "unknown query"
        if item.get("status") != "RUNNING":
            return "duplicate"
        job = AthenaJob.from_item(item["job"])
        if state in ("FAILED", "CANCELLED"):
            self.audit.record("athena", query_id, stage, state, note=reason[:500])
            self._drop(job)
            return self._reject(job, reason or f"Athena query {state.lower()}")
        if state != "SUCCEEDED":
            return "ignored"
        self.audit.record("athena", query_id, stage, "SUCCEEDED")
        if stage == "ddl":
            unload_id = self._query(unload(job))
            self.audit.record(
                "athena", unload_id, "unload", "RUNNING", attributes={"job": job.to_item()}
            )
            return "unloading"
        self._drop(job)
        keys = self._publish_files(job)
        subject = f"s3://{job.bucket}/{job.key}"
        self.audit.record(
            "file",
            subject,
            job.version,
            "PROCESSED",
            note=f"Athena UNLOAD: {len(keys)} file(s)",
            attributes={"output_keys": keys, "engine": "athena", "finished_at": utc_now()},
        )
        self.publisher.publish(
            "FileConverted",
            {
                "bucket": job.bucket,
                "key": job.key,
                "dataset": job.dataset,
                "table": job.table,
                "partition_values": job.partitions,
                "output_bucket": job.output_bucket,
                "output_keys": keys or [job.output_prefix],
                "rows": 0,
                "schema_fingerprint": _fingerprint(job.columns),
                "columns": [{"name": c, "type": "string"} for c in job.columns],
                "engine": "athena",
                "converted_at": utc_now(),
            },
        )
        count("FilesConverted")
        return "converted"

    def _publish_files(self, job: AthenaJob) -> list[str]:
        """Move UNLOAD's files from the scratch prefix into the dataset's partition folder."""
        unloaded = [
            o["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=job.output_bucket, Prefix=job.output_prefix
            )
            for o in page.get("Contents", [])
        ]
        stem = job.key.rsplit("/", 1)[-1].split(".", 1)[0] or "part"
        token = job.output_prefix.rstrip("/").rsplit("/", 1)[-1]
        keys = []
        for n, source in enumerate(sorted(unloaded)):
            target = f"{job.partition_prefix}{normalize_identifier(stem, prefix='f')}-{token}-{n}.parquet"
            self.s3.copy_object(
                Bucket=job.output_bucket,
                Key=target,
                CopySource={"Bucket": job.output_bucket, "Key": source},
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
        subject = f"s3://{job.bucket}/{job.key}"
        quarantine_key = f"quarantine/{job.key}"
        self.s3.copy_object(
            Bucket=job.bucket, Key=quarantine_key, CopySource={"Bucket": job.bucket, "Key": job.key}
        )
        self.audit.record(
            "file",
            subject,
            job.version,
            "REJECTED",
            note=f"athena: {reason}"[:500],
            attributes={
                "reason_code": "malformed",
                "reason": reason,
                "quarantine_key": quarantine_key,
            },
        )
        self.publisher.publish(
            "FileRejected",
            {
                "bucket": job.bucket,
                "key": job.key,
                "dataset": job.dataset,
                "reason_code": "malformed",
                "reason": f"Athena could not convert it: {reason}",
                "quarantine_key": quarantine_key,
                "rejected_at": utc_now(),
            },
        )
        count("FilesRejected")
        return "rejected"


def _fingerprint(columns: list[str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps([[c, "string"] for c in columns]).encode()).hexdigest()
