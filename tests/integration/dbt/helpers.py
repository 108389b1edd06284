"""Helpers for the example dbt project's tests: paths, staging Parquet, reading the lake."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[3]
DBT_PROJECT = REPO / "dbt"
SAMPLE_DATA = REPO / "examples" / "data"
PARTITION = "partition_dt=2026-11-20"
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}


def dbt_env(moto_endpoint: str, bucket: str) -> dict[str, str]:
    """What the project's local target reads (the runner adds the DuckDB paths)."""
    return {
        **FAKE_CREDENTIALS,
        "LAKEGOV_FORMATTED_BUCKET": bucket,
        "LAKEGOV_S3_ENDPOINT": moto_endpoint,
    }


def sample_customers() -> pa.Table:
    """customers.json as the converter would stage it (types inferred from the file)."""
    return pa_json.read_json(SAMPLE_DATA / "customers.json")


def sample_cards() -> pa.Table:
    return pa_csv.read_csv(
        SAMPLE_DATA / "cards.csv",
        convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
    )


def put_staging(s3: Any, bucket: str, table_name: str, table: pa.Table) -> str:
    """Write one staging partition: formatted_stg/<table>/partition_dt=.../part-0.parquet."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    key = f"formatted_stg/{table_name}/{PARTITION}/part-00000.parquet"
    s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
    return key


def read_lake_table(s3: Any, bucket: str, prefix: str) -> pa.Table:
    """All Parquet under a prefix, as one table."""
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    keys = sorted(o["Key"] for o in listed if o["Key"].endswith(".parquet"))
    assert keys, f"no Parquet under s3://{bucket}/{prefix}"
    bodies = [s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys]
    return pa.concat_tables([pq.read_table(io.BytesIO(body)) for body in bodies])
