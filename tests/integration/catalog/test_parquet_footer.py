"""Reading a Parquet file's schema from S3 costs one ranged GET, whatever its size."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from tests.integration.catalog.support import FORMATTED, parquet_bytes

from lakegov.catalog.parquet import read_footer
from lakegov.errors import PermanentError


def test_a_multi_megabyte_file_is_described_by_its_footer_alone(env):
    rows = 400_000
    table = pa.table({"id": np.arange(rows), "x": np.random.default_rng(1).random(rows)})
    body = parquet_bytes(table)
    assert len(body) > 4 * 1024 * 1024
    env.s3.put_object(Bucket=FORMATTED, Key="formatted_stg/t/big.parquet", Body=body)
    footer = read_footer(env.s3, FORMATTED, "formatted_stg/t/big.parquet")
    assert footer.schema == table.schema.remove_metadata() or footer.schema.names == ["id", "x"]
    assert footer.num_rows == rows
    assert footer.requests == 1


def test_a_tiny_file_and_a_non_parquet_file(env):
    small = pa.table({"a": [1]})
    env.s3.put_object(Bucket=FORMATTED, Key="s.parquet", Body=parquet_bytes(small))
    assert read_footer(env.s3, FORMATTED, "s.parquet").num_rows == 1
    env.s3.put_object(Bucket=FORMATTED, Key="bad.parquet", Body=b"PAR1 nope")
    with pytest.raises(PermanentError, match="not a readable Parquet file"):
        read_footer(env.s3, FORMATTED, "bad.parquet")
