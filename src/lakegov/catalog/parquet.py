"""A Parquet file's schema and row count from S3, reading only its footer.

:class:`S3RangeFile` is a read-only file over ranged GETs that prefetches the object's
tail: the footer of a typical file (a few KiB to a few hundred KiB) arrives in the first
request, so :func:`read_footer` costs one GET whatever the file's size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError

TAIL_BYTES = 256 * 1024


class ObjectGone(PermanentError):
    """The object is not there (deleted, or never written)."""


class S3RangeFile(io.RawIOBase):
    """Seekable, read-only view of one S3 object, fetched by byte ranges on demand."""

    def __init__(self, s3: Any, bucket: str, key: str, *, tail_bytes: int = TAIL_BYTES) -> None:
        super().__init__()
        self._s3, self.bucket, self.key = s3, bucket, key
        self._pos = 0
        self.requests = 0
        response = self._get(f"bytes=-{tail_bytes}")
        body = response["Body"].read()
        content_range = str(response.get("ContentRange") or "")
        self.size = int(content_range.rsplit("/", 1)[-1]) if "/" in content_range else len(body)
        self._tail_start = self.size - len(body)
        self._tail = body

    def _get(self, byte_range: str) -> Any:
        self.requests += 1
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=self.key, Range=byte_range)
        except ClientError as exc:
            if is_transient(exc):
                raise RetryableError(f"s3://{self.bucket}/{self.key}: {exc}") from exc
            if error_code(exc) in ("NoSuchKey", "404"):
                raise ObjectGone(f"s3://{self.bucket}/{self.key} is missing") from exc
            if error_code(exc) == "InvalidRange":
                raise PermanentError(f"s3://{self.bucket}/{self.key} is empty") from exc
            raise

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self._pos
        end = min(self.size, self._pos + size)
        if end <= self._pos:
            return b""
        if self._pos >= self._tail_start:
            data = self._tail[self._pos - self._tail_start : end - self._tail_start]
        else:
            data = self._get(f"bytes={self._pos}-{end - 1}")["Body"].read()
        self._pos += len(data)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class ParquetFooter:
    schema: pa.Schema
    num_rows: int
    requests: int = 1


def read_footer(s3: Any, bucket: str, key: str) -> ParquetFooter:
    """Schema and row count of ``s3://bucket/key``. Raises PermanentError if not Parquet."""
    handle = S3RangeFile(s3, bucket, key)
    try:
        meta = pq.ParquetFile(handle).metadata
    except (pa.ArrowInvalid, OSError) as exc:
        raise PermanentError(f"s3://{bucket}/{key} is not a readable Parquet file: {exc}") from exc
    return ParquetFooter(meta.schema.to_arrow_schema(), int(meta.num_rows), handle.requests)
