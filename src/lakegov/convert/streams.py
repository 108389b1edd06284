"""Byte-stream plumbing for the converter: limits, decompression, transcoding.

Everything here reads forwards only (an S3 ``StreamingBody`` cannot seek) and holds one
read chunk in memory: the engine spools what it reads to a local file for DuckDB. Bombs
and bzip2 are lakegov's, not DuckDB's.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

import pyarrow as pa

from lakegov.errors import RejectedFile

READ_CHUNK = 4 * 1024 * 1024
BOMB_FLOOR = 4 * 1024 * 1024  # below this much output, no ratio can be a bomb worth stopping

MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\x28\xb5\x2f\xfd": "zstd",
}


@dataclass
class StreamStats:
    """Bytes read from the source (``bytes_in``) and after decompression."""

    bytes_in: int = 0
    bytes_decompressed: int = 0


class LimitedReader:
    """Reads the source forwards, counting bytes and refusing more than ``max_bytes``."""

    def __init__(self, source: BinaryIO, max_bytes: int, stats: StreamStats) -> None:
        self._source = source
        self._max = max_bytes
        self._stats = stats
        self._prefix = b""

    def peek(self, size: int) -> bytes:
        while len(self._prefix) < size:
            chunk = self._read_source(size - len(self._prefix))
            if not chunk:
                break
            self._prefix += chunk
        return self._prefix[:size]

    def _read_source(self, size: int) -> bytes:
        chunk = self._source.read(size)
        if chunk:
            self._stats.bytes_in += len(chunk)
            if self._stats.bytes_in > self._max:
                raise RejectedFile(
                    "too_large", f"the file is larger than the limit of {self._max} bytes"
                )
        return bytes(chunk) if chunk else b""

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            out = self._prefix if size < 0 else self._prefix[:size]
            self._prefix = self._prefix[len(out) :]
            return out
        if size is None or size < 0:
            parts = []
            while chunk := self._read_source(READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        return self._read_source(size)

    @property
    def closed(self) -> bool:  # pyarrow's PythonFile asks
        return False

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return True


def detect_compression(head: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


class DecompressedReader:
    """Decompressed bytes of ``raw``, stopping a decompression bomb while it streams:
    once output passes :data:`BOMB_FLOOR`, output/input above ``max_ratio`` is refused."""

    def __init__(
        self, raw: LimitedReader, compression: str | None, max_ratio: float, stats: StreamStats
    ) -> None:
        self._stats = stats
        self._ratio = max_ratio
        self._compression = compression
        self._inner: IO[bytes] | LimitedReader
        if compression == "gzip":
            self._inner = cast(BinaryIO, gzip.GzipFile(fileobj=cast(BinaryIO, raw), mode="rb"))
        elif compression == "bz2":
            self._inner = bz2.BZ2File(cast(BinaryIO, raw), mode="rb")
        elif compression == "zstd":
            # pyarrow's codec (already in the pandas layer): no 20 MB zstandard wheel in
            # every function package
            self._inner = cast(
                BinaryIO,
                pa.CompressedInputStream(pa.PythonFile(cast(BinaryIO, raw), mode="r"), "zstd"),
            )
        else:
            self._inner = raw
        self._head = b""

    def read(self, size: int = READ_CHUNK) -> bytes:
        if self._head:
            out, self._head = self._head[:size], self._head[size:]
            return out
        try:
            chunk = self._inner.read(size)
        except RejectedFile:
            raise
        except (OSError, EOFError, zlib.error, pa.ArrowException, ValueError) as exc:
            raise RejectedFile(
                "malformed", f"the {self._compression} stream is corrupt or truncated ({exc})"
            ) from exc
        self._stats.bytes_decompressed += len(chunk)
        if (
            self._compression
            and self._stats.bytes_decompressed > BOMB_FLOOR
            and self._stats.bytes_decompressed > self._ratio * max(self._stats.bytes_in, 1)
        ):
            raise RejectedFile(
                "decompression_bomb",
                f"{self._compression} data expands more than {self._ratio:g}x "
                f"({self._stats.bytes_decompressed} bytes from {self._stats.bytes_in})",
            )
        return chunk

    def peek(self, size: int) -> bytes:
        """Up to ``size`` leading bytes, kept to be read again."""
        while len(self._head) < size:
            saved, self._head = self._head, b""
            chunk = self.read(size - len(saved))
            self._head = saved + chunk
            if not chunk:
                break
        return self._head[:size]

    def chunks(self, size: int = READ_CHUNK) -> Iterator[bytes]:
        while chunk := self.read(size):
            yield chunk


UTF8_BOM = codecs.BOM_UTF8
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def utf8_chunks(chunks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    """The text as UTF-8 bytes: a UTF-8 BOM is dropped, a UTF-16 BOM switches to UTF-16,
    any other declared encoding is transcoded (incrementally, never splitting a character)."""
    first = next(chunks, b"")
    codec = codecs.lookup(encoding).name
    if first.startswith(UTF16_BOMS) and codec in ("utf-8", "ascii"):
        codec = "utf-16"
    if codec == "utf-8":
        if first.startswith(UTF8_BOM):
            first = first[len(UTF8_BOM) :]
        if first:
            yield first
        yield from chunks
        return
    decoder = codecs.getincrementaldecoder(codec)("strict")
    offset = 0
    try:
        for chunk in itertools.chain([first] if first else [], chunks):
            text = decoder.decode(chunk)
            offset += len(chunk)
            if text:
                yield (
                    text.lstrip("\ufeff").encode("utf-8")
                    if offset == len(chunk)
                    else text.encode("utf-8")
                )
        tail = decoder.decode(b"", final=True)
        if tail:
            yield tail.encode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedFile(
            "encoding", f"the file is not valid {encoding} (near decoded byte {offset + exc.start})"
        ) from exc
