"""The lake's layout: a landed key names its dataset, table and partition, and the
formatted layout (``formatted_stg/<table>/<k=v>/.../<file>.parquet``) is written and
read back here, and only here.

A landed key reads ``<path>/<key=value>/.../<file>``::

    mwaa/blog/partition_dt=2026-11-20/customers.json
    -> dataset id   mwaa/blog/customers
       table        mwaa_blog_customers
       partitions   {"partition_dt": "2026-11-20"}
       format       json (from the name; the engine still sniffs the content)
       output       formatted_stg/mwaa_blog_customers/partition_dt=2026-11-20/

Rules, each one deliberate:

- The dataset id is the path folders plus the file's stem (the name without its format and
  compression extensions), joined with ``/``; the table name is the same words made a valid
  Glue/Athena identifier (see :func:`normalize_identifier`). A file at the root
  (``customers.csv``) or directly under partition folders is its own dataset (``customers``).
- Partition folders (``name=value``) must come after every plain folder: ``a/dt=1/b/f.csv``
  is refused, since no table layout could hold it. Partition names are normalised like
  column names; values are kept as written (URL-decoded) and must be non-empty.
- S3 event notifications URL-encode keys (``+`` for a space, ``%3D`` for ``=``); pass
  ``url_encoded=True`` for such keys. Empty folders (``a//b``), a trailing ``/`` (a folder
  marker) and ``.``/``..`` segments are refused with reason code ``invalid_key``.

The formatted layout: the table folder is the table's location, the ``k=v`` folders below
it are its partitions, in order. Partition values are percent-encoded in folder names
(``quote(v, safe='')``, as Hive does): ``hour=2026-11-21T10:00`` lands in
``hour=2026-11-21T10%3A00/``. A partition's *values* are the decoded ones (what queries
filter on); its *folder* is the one the Parquet objects are actually under, taken from the
output keys as they are, so a Glue partition's Location is always the folder holding its
data. A file directly in the table folder belongs to an unpartitioned table. Rows a
conversion sets aside go to the same place under ``formatted_stg_exceptions/``, as JSON
Lines.

Generations (compaction): a partition compacted once or more reads from a *generation
folder* below its folder, ``_g000001/`` and up (:func:`generation_folder`); generation 0 is
the partition folder itself. The leading ``_`` hides a generation folder from readers of the
folder above (Athena skips ``_`` and ``.`` names), so a new generation is written in full
before the partition's location is switched to it, and the files of the old one are deleted
only after. A key inside a generation folder belongs to the partition above it
(:func:`split_key` drops the generation folder; :func:`key_generation` reads it).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

from lakegov.errors import PermanentError, RejectedFile

STAGING_PREFIX = "formatted_stg"
EXCEPTIONS_PREFIX = "formatted_stg_exceptions"
QUARANTINE_PREFIX = "quarantine/"  # in the raw bucket: rejected landed files, as they came
MAX_IDENTIFIER = 255  # Glue's limit for database, table and column names

FORMAT_EXTENSIONS: dict[str, str] = {
    "csv": "csv",
    "tsv": "csv",
    "psv": "csv",
    "txt": "csv",
    "dat": "csv",
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "parquet": "parquet",
    "pq": "parquet",
    "avro": "avro",
    "xml": "xml",
    "xlsx": "xlsx",
    "xlsm": "xlsx",
    "xls": "xls",
    "ods": "ods",
}
COMPRESSION_EXTENSIONS: dict[str, str] = {
    "gz": "gzip",
    "gzip": "gzip",
    "bz2": "bz2",
    "zst": "zstd",
    "zstd": "zstd",
}
# Names we recognise only to refuse them with a reason that says what to do instead.
_SUPPORTED_COMPRESSION = "supported compressions are gzip (.gz), bzip2 (.bz2) and zstd (.zst)"
_ARCHIVE = f"archives are not supported: upload each file on its own; {_SUPPORTED_COMPRESSION}"
UNSUPPORTED_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(("zip", "7z", "tar", "rar", "tgz"), _ARCHIVE),
    "xz": f"xz compression is not supported; {_SUPPORTED_COMPRESSION}",
    "lz4": f"lz4 compression is not supported; {_SUPPORTED_COMPRESSION}",
}
DELIMITER_BY_EXTENSION = {"tsv": "\t", "psv": "|"}

_NON_IDENT = re.compile(r"[^a-z0-9_]+")
_UNDERSCORES = re.compile(r"_+")


def normalize_identifier(raw: str, *, prefix: str = "t") -> str:
    """Make ``raw`` a valid Glue/Athena name: lowercase ``[a-z0-9_]``, no leading digit.

    Accented letters lose their accents (``Café`` -> ``cafe``); every other run of
    characters outside ``[a-z0-9_]`` becomes one ``_``; leading/trailing underscores go; a
    leading digit gets ``<prefix>_`` in front (``2026_sales`` -> ``t_2026_sales``). Names
    longer than 255 characters are cut and given a short hash so that they stay distinct.
    Returns ``""`` when nothing usable remains (callers decide what that means).
    """
    text = unicodedata.normalize("NFKD", raw)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _NON_IDENT.sub("_", text)
    text = _UNDERSCORES.sub("_", text).strip("_")
    if not text:
        return ""
    if text[0].isdigit():
        text = f"{prefix}_{text}"
    if len(text) > MAX_IDENTIFIER:
        digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
        text = f"{text[: MAX_IDENTIFIER - 9]}_{digest}"
    return text


@dataclass(frozen=True)
class NameParts:
    """What a file name says: its stem, format and compression (``None`` when unknown)."""

    stem: str
    format: str | None
    compression: str | None
    extension: str | None = None  # the format extension as written, e.g. "tsv"


def split_file_name(name: str) -> NameParts:
    """Split ``customers.csv.gz`` into stem ``customers``, format ``csv``, compression ``gzip``.

    Raises ``RejectedFile("unsupported_format")`` for archives (``.zip``, ``.xz``, ...).
    """
    stem = name
    compression = None
    fmt = None
    extension = None
    base, dot, ext = stem.rpartition(".")
    if dot and base and ext.lower() in COMPRESSION_EXTENSIONS:
        compression = COMPRESSION_EXTENSIONS[ext.lower()]
        stem = base
    elif dot and base and ext.lower() in UNSUPPORTED_EXTENSIONS:
        raise RejectedFile("unsupported_format", f"{name}: {UNSUPPORTED_EXTENSIONS[ext.lower()]}")
    base, dot, ext = stem.rpartition(".")
    if dot and base and ext.lower() in FORMAT_EXTENSIONS:
        extension = ext.lower()
        fmt = FORMAT_EXTENSIONS[extension]
        stem = base
    return NameParts(stem=stem, format=fmt, compression=compression, extension=extension)


@dataclass(frozen=True)
class DatasetRef:
    """A landed object, read through the zero-config layout."""

    key: str  # the decoded object key
    dataset_id: str  # e.g. "mwaa/blog/customers"
    table_name: str  # e.g. "mwaa_blog_customers"
    partitions: dict[str, str] = field(default_factory=dict)  # ordered as in the key
    file_name: str = ""
    file_stem: str = ""
    format: str | None = None  # from the name: csv json parquet avro xml xlsx xls ods | None
    compression: str | None = None  # from the name: gzip | bz2 | zstd | None
    delimiter: str | None = None  # implied by .tsv / .psv

    @property
    def output_prefix(self) -> str:
        """``formatted_stg/<table>/<k=v>/.../`` (values percent-encoded as Hive does)."""
        return self._under(STAGING_PREFIX)

    def _under(self, root: str) -> str:
        return f"{root}/{self.table_name}/{encoded_folder(list(self.partitions.items()))}"

    def _file(self, token: str) -> str:
        stem = normalize_identifier(self.file_stem, prefix="f") or "part"
        return stem + (f"-{re.sub(r'[^A-Za-z0-9_.-]', '', token)}" if token else "")

    def output_key(self, token: str = "", *, generation: int = 0) -> str:
        """The Parquet key for this file: ``<prefix>[_gNNNNNN/]<stem>[-<token>].parquet``.

        ``token`` (for example the object's ETag or version id) keeps two uploads of the
        same name in one partition from overwriting each other when the caller wants that;
        ``generation`` is the partition's current generation (compacted partitions).
        """
        return f"{self.output_prefix}{generation_folder(generation)}{self._file(token)}.parquet"

    def exceptions_key(self, token: str = "") -> str:
        """Where the rows this file's conversion set aside go (JSON Lines), beside the
        output's place under ``formatted_stg_exceptions/``."""
        return f"{self._under(EXCEPTIONS_PREFIX)}{self._file(token)}.jsonl"

    def with_table_name(self, table_name: str) -> DatasetRef:
        """A copy whose table (and output prefix) is ``table_name`` (a datasets/ override)."""
        normalized = normalize_identifier(table_name)
        if normalized != table_name:
            raise RejectedFile(
                "invalid_key", f"table name {table_name!r} is not a valid Glue table name"
            )
        return DatasetRef(
            key=self.key,
            dataset_id=self.dataset_id,
            table_name=table_name,
            partitions=dict(self.partitions),
            file_name=self.file_name,
            file_stem=self.file_stem,
            format=self.format,
            compression=self.compression,
            delimiter=self.delimiter,
        )


def quarantine_key(key: str) -> str:
    """Where a rejected landed file is copied in the raw bucket (its key under quarantine/)."""
    return f"{QUARANTINE_PREFIX}{key}"


def decode_event_key(key: str) -> str:
    """Decode a key as S3 event notifications encode it (``+`` is a space, ``%XX`` escapes)."""
    return unquote_plus(key)


def parse_key(key: str, *, url_encoded: bool = False) -> DatasetRef:
    """Read ``key`` through the landing layout; raise ``RejectedFile("invalid_key")`` if it
    cannot be placed (see the module docstring for the rules)."""
    decoded = decode_event_key(key) if url_encoded else key
    if not decoded or decoded.endswith("/"):
        raise RejectedFile("invalid_key", f"{decoded!r} is a folder, not a file")
    segments = decoded.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise RejectedFile("invalid_key", f"{decoded!r} has an empty, '.' or '..' folder")
    *folders, file_name = segments
    parts = split_file_name(file_name)
    if not parts.stem or parts.stem.startswith("."):
        raise RejectedFile("invalid_key", f"{file_name!r} has no usable file name")

    path: list[str] = []
    partitions: dict[str, str] = {}
    for folder in folders:
        name, eq, value = folder.partition("=")
        if not eq:
            if partitions:
                raise RejectedFile(
                    "invalid_key",
                    f"{decoded!r}: folder {folder!r} follows a partition folder; "
                    "partition folders (name=value) must come last",
                )
            path.append(folder)
            continue
        column = normalize_identifier(name, prefix="p")
        if not column or not value:
            raise RejectedFile(
                "invalid_key", f"{decoded!r}: partition folder {folder!r} needs a name and value"
            )
        if column in partitions:
            raise RejectedFile("invalid_key", f"{decoded!r}: partition {column!r} appears twice")
        partitions[column] = value

    words = [*path, parts.stem]
    table = normalize_identifier("_".join(words))
    if not table:
        raise RejectedFile("invalid_key", f"{decoded!r} gives no usable table name")
    return DatasetRef(
        key=decoded,
        dataset_id="/".join(words),
        table_name=table,
        partitions=partitions,
        file_name=file_name,
        file_stem=parts.stem,
        format=parts.format,
        compression=parts.compression,
        delimiter=DELIMITER_BY_EXTENSION.get(parts.extension or ""),
    )


# --------------------------------------------------------------------------- formatted_stg/


@dataclass(frozen=True)
class Partition:
    """One partition: ordered, decoded ``(key, value)`` pairs and its folder under the table.

    ``path`` is the folder as found in the object keys (``k=v%3Aw/``); without it (a
    partition built from values) the folder is encoded the way the converter encodes it.
    Two partitions with the same values are equal whatever their ``path``.
    """

    items: tuple[tuple[str, str], ...]
    path: str = field(default="", compare=False)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.items)

    @property
    def values(self) -> list[str]:
        return [v for _, v in self.items]

    @property
    def folder(self) -> str:
        """The partition's folder under the table location (``k1=v1/k2=v2/``)."""
        return self.path or encoded_folder(self.items)

    def to_event(self) -> dict[str, str]:
        return dict(self.items)


def encoded_folder(items: Sequence[tuple[str, str]]) -> str:
    """``k=v/`` folders with values percent-encoded exactly as the converter writes them."""
    return "".join(f"{k}={quote(v, safe='')}/" for k, v in items)


def split_key(key: str) -> tuple[str, str, Partition]:
    """``formatted_stg/t/a=1/b=2/f.parquet`` -> (``formatted_stg/t/``, ``t``, partition a=1/b=2).

    Values are decoded (``%3A`` -> ``:``); the partition keeps the folders as they are.
    Raises PermanentError for a key outside the layout.
    """
    parts = key.split("/")
    if len(parts) < 3 or not parts[1] or not parts[-1]:
        raise PermanentError(f"{key!r} is not under <prefix>/<table>/.../<file>")
    prefix, table, *folders, _file = parts
    if folders and _GENERATION.fullmatch(folders[-1]):
        folders = folders[:-1]  # a generation of the partition above
    items: list[tuple[str, str]] = []
    for folder in folders:
        name, sep, value = folder.partition("=")
        if not sep or not name:
            raise PermanentError(f"{key!r}: folder {folder!r} is not a key=value partition")
        items.append((name, unquote(value)))
    path = "".join(f"{folder}/" for folder in folders)
    return f"{prefix}/{table}/", table, Partition(tuple(items), path)


# ------------------------------------------------------------------ the lake's own records

# The service's own tables in the formatted bucket and database: the run audit (named as in
# the original solution), every dbt test result, and the OpenLineage events. Each is one
# folder per table, partitioned by the day (UTC) of the run or event, so a query on recent
# runs reads a few folders. One object per run (or per lineage event), named after what
# makes it unique, so a duplicate run-end event rewrites the same object instead of adding
# rows.
AUDIT_CONTROL_TABLE = "audit_control"
TEST_RESULTS_TABLE = "test_results"
LINEAGE_EVENTS_TABLE = "lineage_events"
RECORD_PARTITION = "run_date"

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.=-]+")


def record_day(timestamp: str) -> str:
    """``2026-11-30`` from an ISO 8601 timestamp (``2026-11-30T10:00:00Z``)."""
    day = timestamp[:10]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise PermanentError(f"{timestamp!r} does not start with a YYYY-MM-DD date")
    return day


def record_partition(timestamp: str) -> Partition:
    """The partition a record of ``timestamp`` belongs to (``run_date=YYYY-MM-DD``)."""
    return Partition(((RECORD_PARTITION, record_day(timestamp)),))


def record_key(table: str, timestamp: str, *names: str) -> str:
    """``<table>/run_date=<day>/<name>-<name>....parquet``: one object per run or event.

    ``names`` (product and run id, or an event's run id and type) make it unique and
    deterministic; characters outside ``[A-Za-z0-9_.=-]`` become ``_``.
    """
    stem = "-".join(_UNSAFE_NAME.sub("_", n) for n in names if n)
    if not stem:
        raise PermanentError(f"a {table} record needs a name")
    return f"{table}/{record_partition(timestamp).folder}{stem}.parquet"


def table_location(bucket: str, table: str) -> str:
    """``s3://<bucket>/<table>/``: the location of one of the service's own tables."""
    return f"s3://{bucket}/{table}/"


# --------------------------------------------------------------------------- generations

_GENERATION = re.compile(r"_g(\d{6})")


def generation_folder(generation: int) -> str:
    """The folder of a partition's generation below its folder (``""`` for generation 0)."""
    if generation < 0 or generation > 999_999:
        raise ValueError(f"generation {generation} is out of range")
    return f"_g{generation:06d}/" if generation else ""


def key_generation(key: str) -> int:
    """The generation a formatted key belongs to (0: directly in its partition folder)."""
    parts = key.split("/")
    if len(parts) >= 2:
        match = _GENERATION.fullmatch(parts[-2])
        if match:
            return int(match.group(1))
    return 0


def generation_prefix(partition_prefix: str, generation: int) -> str:
    """The key prefix of one generation of the partition at ``partition_prefix`` (which
    ends with ``/``): what a Glue partition's location points at."""
    return f"{partition_prefix}{generation_folder(generation)}"


def in_generation(key: str, partition_prefix: str, generation: int) -> bool:
    """Whether ``key`` is a data file of exactly that generation (not of another, not in a
    subfolder, not hidden)."""
    prefix = generation_prefix(partition_prefix, generation)
    rest = key[len(prefix) :] if key.startswith(prefix) else ""
    return bool(rest) and "/" not in rest and not rest.startswith(("_", "."))
