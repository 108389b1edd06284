"""Fixtures for the converter's unit tests: real files written to tmp_path, converted."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakegov.convert.databases import DuckDBPool
from lakegov.convert.engine import ConversionResult, convert
from lakegov.convert.options import DatasetOptions


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    # The converter never touches AWS; these make sure nothing could reach a real account.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


class NonSeekable(io.RawIOBase):
    """A forward-only stream, as an S3 StreamingBody is."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seek(self, *args: Any) -> int:
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


@dataclass
class Converted:
    result: ConversionResult
    table: pa.Table
    exceptions: list[dict[str, Any]]
    parquet: bytes


@pytest.fixture(scope="session")
def databases() -> Any:
    """One pool for every conversion of the session, as the convert function keeps one per
    warm container: each test also shows that nothing of the conversions before it leaks
    into its own."""
    pool = DuckDBPool()
    yield pool
    pool.close()


@pytest.fixture
def run(tmp_path: Path, databases: DuckDBPool) -> Callable[..., Converted]:
    """Convert ``data`` (bytes) named ``name`` (on the session's DuckDB pool); returns the
    result, the Parquet table read back and the exceptions records."""

    def _run(
        data: bytes, name: str = "file.csv", *, options: DatasetOptions | None = None, **kwargs: Any
    ) -> Converted:
        import json

        sink = io.BytesIO()
        exc = io.BytesIO()
        result = convert(
            NonSeekable(data),
            sink,
            options=options or DatasetOptions(),
            source_name=name,
            exceptions_sink=lambda: exc,
            workdir=str(tmp_path),
            **{"databases": databases, **kwargs},
        )
        parquet = sink.getvalue()
        table = pq.read_table(io.BytesIO(parquet))
        records = [json.loads(line) for line in exc.getvalue().decode().splitlines()]
        return Converted(result, table, records, parquet)

    return _run
