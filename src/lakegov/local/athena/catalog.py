"""The Glue catalog as DuckDB sees it: one table -> one SQL view over its objects in S3.

A table's rows are its files as Athena finds them: the objects under the table's (or each
partition's) location, skipping names that start with ``_`` or ``.`` (Athena's rule, which
lets the converter and UNLOAD stage files next to the data). Partitions come from Glue's
partition metadata, or, for a table with partition projection, from the ``key=value``
folders under its location. Column types are the catalog's: Parquet columns are cast to
them (a file that cannot be read as its table's type fails the query, as Athena's
HIVE_BAD_DATA does); text formats read as text and cast leniently, as Hive's SerDes do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from lakegov.convert.sql import identifier, literal
from lakegov.schema import TypeNode, parse_type

PARQUET = "parquet"
CSV = "csv"
JSON = "json"
PATH_COLUMN = "$path"


class CatalogError(Exception):
    """A table or database the query names does not exist, or cannot be read."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # the Glue (Hive) type string


@dataclass
class TableDef:
    """What the query engine needs to know of one Glue table."""

    database: str
    name: str
    columns: list[Column]
    partition_keys: list[Column]
    location: str
    format: str
    serde_parameters: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def all_columns(self) -> list[Column]:
        return [*self.columns, *self.partition_keys]

    @property
    def projected(self) -> bool:
        return self.parameters.get("projection.enabled", "").lower() == "true"


@dataclass(frozen=True)
class DataFile:
    url: str
    size: int
    partition: tuple[tuple[str, str], ...] = ()


def split_s3(url: str) -> tuple[str, str]:
    if not url.startswith("s3://"):
        raise CatalogError("INVALID_LOCATION", f"not an s3:// location: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def table_format(storage: dict[str, Any]) -> str:
    """PARQUET, CSV or JSON from a table's StorageDescriptor (its SerDe, input format)."""
    serde = str((storage.get("SerdeInfo") or {}).get("SerializationLibrary") or "").lower()
    input_format = str(storage.get("InputFormat") or "").lower()
    if "parquet" in serde or "parquet" in input_format:
        return PARQUET
    if "json" in serde:
        return JSON
    if "csv" in serde or "lazysimple" in serde or "textinputformat" in input_format:
        return CSV
    raise CatalogError(
        "NOT_SUPPORTED",
        f"the local Athena reads Parquet, CSV and JSON tables; not SerDe {serde or '-'!r} "
        f"/ input format {input_format or '-'!r}",
    )


def load_table(glue: Any, database: str, name: str) -> TableDef:
    try:
        table = glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException as exc:
        try:
            glue.get_database(Name=database)
        except glue.exceptions.EntityNotFoundException:
            raise CatalogError("SCHEMA_NOT_FOUND", f"Schema '{database}' does not exist") from exc
        raise CatalogError(
            "TABLE_NOT_FOUND", f"Table 'awsdatacatalog.{database}.{name}' does not exist"
        ) from exc
    storage = table.get("StorageDescriptor") or {}
    return TableDef(
        database=database,
        name=str(table["Name"]),
        columns=[Column(c["Name"].lower(), c["Type"]) for c in storage.get("Columns") or []],
        partition_keys=[
            Column(c["Name"].lower(), c.get("Type", "string"))
            for c in table.get("PartitionKeys") or []
        ],
        location=str(storage.get("Location") or ""),
        format=table_format(storage),
        serde_parameters=dict((storage.get("SerdeInfo") or {}).get("Parameters") or {}),
        parameters=dict(table.get("Parameters") or {}),
    )


def _visible(relative: str) -> bool:
    """Athena skips objects (and folders) whose name starts with ``_`` or ``.``."""
    parts = [p for p in relative.split("/") if p]
    return bool(parts) and not any(p.startswith(("_", ".")) for p in parts)


def _list(s3: Any, location: str) -> list[tuple[str, int, str]]:
    """(url, size, path relative to ``location``) of every visible object under it."""
    bucket, prefix = split_s3(location)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or []:
            relative = obj["Key"][len(prefix) :]
            if obj["Key"].endswith("/") or obj["Key"].endswith("_$folder$"):
                continue
            if obj["Size"] == 0 or not _visible(relative):
                continue
            out.append((f"s3://{bucket}/{obj['Key']}", int(obj["Size"]), relative))
    return out


def data_files(glue: Any, s3: Any, table: TableDef) -> list[DataFile]:
    """The files a query of ``table`` reads, each with its partition values."""
    keys = [k.name for k in table.partition_keys]
    if not keys:
        return [DataFile(url, size) for url, size, _ in _list(s3, table.location)]
    if table.projected:
        files = []
        for url, size, relative in _list(s3, table.location):
            folders = relative.split("/")[:-1]
            pairs = [f.split("=", 1) for f in folders if "=" in f]
            values = {k.lower(): unquote(v) for k, v in pairs}
            if len(folders) == len(keys) and all(k in values for k in keys):
                files.append(DataFile(url, size, tuple((k, values[k]) for k in keys)))
        return files
    files = []
    paginator = glue.get_paginator("get_partitions")
    for page in paginator.paginate(DatabaseName=table.database, TableName=table.name):
        for partition in page.get("Partitions") or []:
            location = (partition.get("StorageDescriptor") or {}).get("Location")
            if not location:
                continue
            registered = tuple(zip(keys, (str(v) for v in partition["Values"]), strict=False))
            files += [DataFile(url, size, registered) for url, size, _ in _list(s3, location)]
    return files


# -- Glue types as DuckDB types --------------------------------------------------------
_PRIMITIVES = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "boolean": "BOOLEAN",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "real": "FLOAT",
    "double": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}


def duckdb_type(glue_type: str) -> str:
    """The DuckDB type a Glue column of ``glue_type`` is read as."""
    try:
        node = parse_type(glue_type)
    except ValueError as exc:
        raise CatalogError("NOT_SUPPORTED", f"column type {glue_type!r}: {exc}") from exc
    return _render(node)


_DECIMAL = re.compile(r"decimal(\(\d{1,2}(,\d{1,2})?\))?")


def _render(node: TypeNode) -> str:
    if node.kind == "struct":
        # field names come from the data (a JSON key, a Parquet field): quoted, never spliced
        inner = ", ".join(f"{identifier(name)} {_render(child)}" for name, child in node.children)
        return f"STRUCT({inner})"
    if node.kind == "array":
        return f"{_render(node.children[0][1])}[]"
    if node.kind == "map":
        return f"MAP({_render(node.children[0][1])}, {_render(node.children[1][1])})"
    base = node.kind.split("(", 1)[0]
    if base == "decimal":
        if not _DECIMAL.fullmatch(node.kind):
            raise CatalogError("NOT_SUPPORTED", f"column type {node.kind!r} is not a decimal(p,s)")
        # Athena's DECIMAL without arguments is DECIMAL(10,0) (DuckDB's would be (18,3))
        precision, _, scale = node.kind[len("decimal(") : -1].partition(",")
        return f"DECIMAL({precision or 10},{scale or 0})"
    try:
        return _PRIMITIVES[base]
    except KeyError:
        raise CatalogError("NOT_SUPPORTED", f"column type {node.kind!r} is not supported") from None


def _reader(table: TableDef, urls: list[str]) -> str:
    files = "[" + ", ".join(literal(u) for u in urls) + "]"
    if table.format == PARQUET:
        return f"read_parquet({files}, union_by_name = true, filename = true)"
    if table.format == CSV:
        params = table.serde_parameters
        sep = params.get("separatorChar") or params.get("field.delim") or ","
        quote_char = params.get("quoteChar", '"')
        escape = params.get("escapeChar", '"')
        skip = int(table.parameters.get("skip.header.line.count", "0") or 0)
        columns = "{" + ", ".join(f"{literal(c.name)}: 'VARCHAR'" for c in table.columns) + "}"
        return (
            f"read_csv({files}, columns = {columns}, delim = {literal(sep)}, "
            f"quote = {literal(quote_char)}, escape = {literal(escape)}, skip = {skip}, "
            "header = false, null_padding = true, ignore_errors = false, filename = true)"
        )
    # JSON (OpenX / Hive JSON SerDe): a column reads the key it is mapped to, or its name
    mapping = {
        k[len("mapping.") :].lower(): v
        for k, v in table.serde_parameters.items()
        if k.startswith("mapping.")
    }
    columns = (
        "{"
        + ", ".join(f"{literal(mapping.get(c.name, c.name))}: 'JSON'" for c in table.columns)
        + "}"
    )
    return f"read_json({files}, columns = {columns}, format = 'newline_delimited', filename = true)"


def _source_column(table: TableDef, column: Column) -> str:
    if table.format == JSON:
        mapping = table.serde_parameters.get(f"mapping.{column.name}", column.name)
        return identifier(mapping)
    return identifier(column.name)


def _cast(table: TableDef, column: Column, present: set[str]) -> str:
    target = duckdb_type(column.type)
    if table.format == PARQUET and column.name not in present:
        return f"CAST(NULL AS {target})"
    source = _source_column(table, column)
    if table.format == PARQUET:
        return f"CAST({source} AS {target})"
    if table.format == JSON:
        # JSON scalars as text without their quotes; nested values keep their JSON text
        text = f"coalesce({source} ->> '$', CAST({source} AS VARCHAR))"
        if target == "VARCHAR":
            return f"CASE WHEN json_type({source}) IN ('OBJECT', 'ARRAY') THEN CAST({source} AS VARCHAR) ELSE {text} END"
        return f"TRY_CAST({text} AS {target})"
    return source if target == "VARCHAR" else f"TRY_CAST({source} AS {target})"


def view_sql(
    table: TableDef,
    files: list[DataFile],
    *,
    columns: list[Column],
    present: set[str],
    row_filter: str | None,
    with_path: bool,
    cell_filters: dict[str, str] | None = None,
) -> str:
    """A SELECT giving ``columns`` of ``table`` (data columns cast, partition columns from
    their values), only rows passing ``row_filter`` (DuckDB SQL over the table's columns)."""
    data = [c for c in columns if c.name not in {k.name for k in table.partition_keys}]
    parts = [c for c in columns if c.name in {k.name for k in table.partition_keys}]
    filter_columns = list(table.all_columns) if row_filter or cell_filters else []
    needed = list(
        dict.fromkeys([*data, *[c for c in filter_columns if c not in table.partition_keys]])
    )
    needed_parts = list(
        dict.fromkeys([*parts, *[c for c in filter_columns if c in table.partition_keys]])
    )
    selects: list[str] = []
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for f in files:
        groups.setdefault(f.partition, []).append(f.url)
    for values, urls in groups.items():
        items = [f"{_cast(table, c, present)} AS {identifier(c.name)}" for c in needed]
        value_of = dict(values)
        items += [
            f"TRY_CAST({literal(value_of.get(c.name, ''))} AS {duckdb_type(c.type)}) AS {identifier(c.name)}"
            for c in needed_parts
        ]
        if with_path:
            items.append(f"filename AS {identifier(PATH_COLUMN)}")
        selects.append(f"SELECT {', '.join(items) or '1 AS _'} FROM {_reader(table, urls)}")  # noqa: S608 - names quoted, literals escaped
    if not selects:
        items = [
            f"CAST(NULL AS {duckdb_type(c.type)}) AS {identifier(c.name)}"
            for c in [*needed, *needed_parts]
        ]
        if with_path:
            items.append(f"CAST(NULL AS VARCHAR) AS {identifier(PATH_COLUMN)}")
        selects.append(f"SELECT {', '.join(items)} WHERE false")
    body = " UNION ALL BY NAME ".join(selects) if len(selects) > 1 else selects[0]
    cells = cell_filters or {}
    outer = [
        f"CASE WHEN {cells[c.name]} THEN {identifier(c.name)} END AS {identifier(c.name)}"
        if c.name in cells
        else identifier(c.name)
        for c in columns
    ]
    if with_path:
        outer.append(identifier(PATH_COLUMN))
    where = f" WHERE {row_filter}" if row_filter else ""
    return f"SELECT {', '.join(outer) or '*'} FROM ({body}) AS t{where}"  # noqa: S608 - names quoted
