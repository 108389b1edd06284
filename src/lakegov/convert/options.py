"""Per-dataset conversion options and the ``datasets/*.json`` documents that set them.

A document (schema: ``schemas/dataset.schema.json``) says which landed keys it applies to
(``match``: a key prefix and an optional file-name glob) and overrides the zero-config
defaults. Example::

    {
      "match": {"prefix": "mwaa/blog/", "pattern": "customers*"},
      "table_name": "blog_customers",
      "format": "csv",
      "csv": {"delimiter": ";", "header": true, "skip_lines": 2},
      "encoding": "latin-1",
      "schema": {"columns": [{"name": "id", "type": "bigint", "nullable": false}],
                 "changes": "additive"},
      "bad_rows": "exceptions", "max_bad_row_fraction": 0.01,
      "limits": {"max_file_bytes": 2000000000, "max_decompression_ratio": 100},
      "catalog": {"mode": "direct"},
      "compaction": {"enabled": true, "target_file_mb": 128, "min_files": 4}
    }

Other formats have their own block: ``xml`` (``record_path``), ``spreadsheet``
(``sheets``, ``header``, ``skip_rows``) and ``fixed_width`` (``columns`` with widths or
start positions, ``skip_lines``); see :class:`XmlOptions`, :class:`SpreadsheetOptions`,
:class:`FixedWidthOptions`.

``compaction`` is read by the converter only to place files in a compacted partition's
current generation; :mod:`lakegov.compaction` does the merging.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from lakegov.errors import InvalidDocument, ValidationIssue
from lakegov.layout import normalize_identifier
from lakegov.schema import declared_type

Format = Literal["csv", "json", "parquet", "avro", "xml", "xlsx", "xls", "ods", "fixed_width"]
Compression = Literal["none", "gzip", "bz2", "zstd"]
BadRows = Literal["reject", "exceptions"]
SchemaChanges = Literal["additive", "any", "none"]
CatalogMode = Literal["crawler", "direct"]

DEFAULT_MAX_FILE_BYTES = 10 * 1024**3
DEFAULT_MAX_RATIO = 200.0
DEFAULT_MAX_BAD_ROW_FRACTION = 0.05


@dataclass(frozen=True)
class ColumnSpec:
    """One declared column: ``type`` is a declared type name (``bigint``, ``decimal(10,2)``...)."""

    name: str
    type: str
    nullable: bool = True

    @property
    def arrow_type(self) -> pa.DataType:
        return declared_type(self.type)


@dataclass(frozen=True)
class XmlOptions:
    """``record_path``: the record element as a path of element names from the root,
    e.g. ``export/orders/order`` (local names; ``{namespace-uri}name`` to be exact).
    ``None``: the root's child elements, when they all have one name."""

    record_path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SheetSpec:
    """One sheet to convert and the table it goes to (``None``: ``<table>_<sheet>``)."""

    name: str
    table_name: str | None = None


@dataclass(frozen=True)
class SpreadsheetOptions:
    """``sheets``: the sheets to convert, each to its own table (``None``: the first
    sheet, to the key's table). ``header``: ``None`` = detect. ``skip_rows``: rows above
    the header to skip (``None`` = detect a title preamble)."""

    sheets: tuple[SheetSpec, ...] | None = None
    header: bool | None = None
    skip_rows: int | None = None


@dataclass(frozen=True)
class FixedWidthColumn:
    """A fixed-width field: its name, first character (1-based) and width in characters."""

    name: str
    start: int
    width: int


@dataclass(frozen=True)
class FixedWidthOptions:
    """The fields of a fixed-width file, in order, and the lines above the data to skip."""

    columns: tuple[FixedWidthColumn, ...]
    skip_lines: int = 0

    @property
    def record_width(self) -> int:
        return max(c.start + c.width - 1 for c in self.columns)


@dataclass(frozen=True)
class CompactionOptions:
    """``compaction`` of a ``datasets/`` document: merging a partition's small files."""

    enabled: bool = False
    target_bytes: int = 128 * 1024**2
    min_files: int = 4


@dataclass(frozen=True)
class DatasetOptions:
    """How one dataset's files are read and written. Every field has a zero-config default.

    - ``format``/``compression``: ``None`` = detect (magic bytes, then the name, then content).
    - ``delimiter``, ``quotechar``: ``None`` = detect (:mod:`lakegov.convert.dialect`:
      ``,`` ``", "`` ``;`` TAB ``|``; ``"`` ``'`` or none).
    - ``header``: ``None`` = detect whether row 1 is a header (when unsure it is kept as
      data, with generated names ``col_1`` …); ``header_rows``: a header of that many rows,
      joined per column with ``_`` (``None`` = detect 1 or 2); ``skip_lines``: physical
      lines above the header to skip (``None`` = detect a preamble).
    - ``null_values``: CSV field texts read as null (default: only the empty field).
    - ``columns``: a declared schema, enforced: values are cast to it; a value that does not
      fit is a bad row, a missing non-nullable column or an undeclared column rejects the file.
    - ``bad_rows``: ``exceptions`` (the default) sets bad rows aside to the exceptions
      output with their line and reason and loads the good ones, unless more than
      ``max_bad_row_fraction`` of the rows are bad; ``reject`` rejects the file on any bad
      row, naming its first bad lines.
    - ``schema_changes`` against the dataset's previous schema: ``additive`` (new columns
      pass, breaking changes reject), ``any`` (everything passes), ``none`` (any change rejects).
    - ``catalog_mode`` is not used by the converter; it is carried for the catalog step.
    """

    format: Format | None = None
    compression: Compression | None = None
    delimiter: str | None = None
    quotechar: str | None = None
    header: bool | None = None
    header_rows: int | None = None
    skip_lines: int | None = None
    encoding: str = "utf-8"
    null_values: tuple[str, ...] = ("",)
    columns: tuple[ColumnSpec, ...] | None = None
    bad_rows: BadRows = "exceptions"
    max_bad_row_fraction: float = DEFAULT_MAX_BAD_ROW_FRACTION
    schema_changes: SchemaChanges = "additive"
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_decompression_ratio: float = DEFAULT_MAX_RATIO
    table_name: str | None = None
    catalog_mode: CatalogMode | None = None  # None: the service's default (direct)
    normalize_column_names: bool = True
    xml: XmlOptions = field(default_factory=XmlOptions)
    spreadsheet: SpreadsheetOptions = field(default_factory=SpreadsheetOptions)
    sheet: str | None = None  # the one sheet a conversion reads (None: the first)
    fixed_width: FixedWidthOptions | None = None
    compaction: CompactionOptions = field(default_factory=CompactionOptions)

    def declared_schema(self) -> pa.Schema | None:
        if self.columns is None:
            return None
        return pa.schema(
            [pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in self.columns]
        )


@dataclass(frozen=True)
class DatasetMatch:
    """Which landed keys a document applies to: a key prefix and an optional name glob."""

    prefix: str
    pattern: str | None = None

    def matches(self, key: str) -> bool:
        if not key.startswith(self.prefix):
            return False
        if self.pattern is None:
            return True
        return fnmatch.fnmatchcase(key.rsplit("/", 1)[-1], self.pattern)

    @property
    def specificity(self) -> tuple[int, int]:
        """Longer prefixes win; a pattern beats none (used to pick among matching documents)."""
        return (len(self.prefix), 1 if self.pattern else 0)


@dataclass(frozen=True)
class DatasetDocument:
    """A loaded ``datasets/`` document: where it applies and the options it sets."""

    match: DatasetMatch
    options: DatasetOptions
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


SCHEMA = "dataset.schema"


def select_document(documents: list[DatasetDocument], key: str) -> DatasetDocument | None:
    """The most specific document whose ``match`` applies to ``key`` (``None`` if none)."""
    candidates = [d for d in documents if d.match.matches(key)]
    return max(candidates, key=lambda d: d.match.specificity) if candidates else None


def options_from_document(doc: Any, source: str = "") -> tuple[DatasetMatch, DatasetOptions]:
    """Validate a ``datasets/`` document and map it onto :class:`DatasetOptions`.

    Raises :class:`InvalidDocument` listing every problem with its JSON path.
    """
    # imported here: converting a file without a dataset document never loads jsonschema
    from lakegov.jsonschemas import schema_issues

    issues = schema_issues(SCHEMA, doc)
    if issues:
        raise InvalidDocument(issues, source)

    issues = []
    csv_opts = doc.get("csv", {})
    columns = None
    schema = doc.get("schema", {})
    if "columns" in schema:
        seen: set[str] = set()
        specs = []
        for i, col in enumerate(schema["columns"]):
            try:
                declared_type(col["type"])
            except ValueError as exc:
                issues.append(ValidationIssue(f"$.schema.columns[{i}].type", str(exc), col["type"]))
            if col["name"] in seen:
                issues.append(
                    ValidationIssue(
                        f"$.schema.columns[{i}].name", "duplicate column name", col["name"]
                    )
                )
            seen.add(col["name"])
            specs.append(ColumnSpec(col["name"], col["type"], col.get("nullable", True)))
        columns = tuple(specs)
    table_name = doc.get("table_name")
    if table_name is not None and normalize_identifier(table_name) != table_name:
        issues.append(
            ValidationIssue(
                "$.table_name",
                "must be a valid Glue table name: lowercase letters, digits and _, "
                "not starting with a digit",
                table_name,
            )
        )
    compaction = doc.get("compaction", {})
    if compaction.get("enabled") and doc.get("catalog", {}).get("mode") == "crawler":
        issues.append(
            ValidationIssue(
                "$.compaction.enabled",
                "compaction switches partition locations in the catalog, which a crawler would "
                "undo: use catalog mode direct (the default) or leave compaction off",
                True,
            )
        )
    encoding = doc.get("encoding", "utf-8")
    try:
        "".encode(encoding)
    except LookupError:
        issues.append(ValidationIssue("$.encoding", f"unknown encoding {encoding!r}", encoding))
    xml_options = XmlOptions(_record_path(doc.get("xml", {}).get("record_path"), issues))
    spreadsheet = _spreadsheet_options(doc.get("spreadsheet", {}), issues)
    fixed_width = _fixed_width_options(doc.get("fixed_width"), issues)
    if doc.get("format") == "fixed_width" and fixed_width is None:
        issues.append(
            ValidationIssue("$.fixed_width", "format fixed_width needs its fixed_width.columns")
        )
    if issues:
        raise InvalidDocument(issues, source)

    limits = doc.get("limits", {})
    match = DatasetMatch(doc["match"]["prefix"], doc["match"].get("pattern"))
    options = DatasetOptions(
        format=doc.get("format"),
        compression=doc.get("compression"),
        delimiter=csv_opts.get("delimiter"),
        quotechar=csv_opts.get("quotechar"),
        header=csv_opts.get("header"),
        header_rows=csv_opts.get("header_rows"),
        skip_lines=csv_opts.get("skip_lines"),
        encoding=encoding,
        null_values=tuple(csv_opts.get("null_values", [""])),
        columns=columns,
        bad_rows=doc.get("bad_rows", "exceptions"),
        max_bad_row_fraction=doc.get("max_bad_row_fraction", DEFAULT_MAX_BAD_ROW_FRACTION),
        schema_changes=schema.get("changes", "additive"),
        max_file_bytes=limits.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES),
        max_decompression_ratio=limits.get("max_decompression_ratio", DEFAULT_MAX_RATIO),
        table_name=table_name,
        catalog_mode=doc.get("catalog", {}).get("mode"),
        normalize_column_names=doc.get("normalize_column_names", True),
        xml=xml_options,
        spreadsheet=spreadsheet,
        fixed_width=fixed_width,
        compaction=CompactionOptions(
            enabled=bool(compaction.get("enabled", False)),
            target_bytes=int(compaction.get("target_file_mb", 128)) * 1024**2,
            min_files=int(compaction.get("min_files", 4)),
        ),
    )
    return match, options


def _record_path(text: str | None, issues: list[ValidationIssue]) -> tuple[str, ...] | None:
    if text is None:
        return None
    steps = tuple(text.strip("/").split("/"))
    if not all(steps):
        issues.append(ValidationIssue("$.xml.record_path", "an empty element name", text))
    return steps


def _spreadsheet_options(
    block: dict[str, Any], issues: list[ValidationIssue]
) -> SpreadsheetOptions:
    sheets = None
    if "sheets" in block:
        specs = []
        for i, sheet in enumerate(block["sheets"]):
            spec = SheetSpec(sheet) if isinstance(sheet, str) else SheetSpec(**sheet)
            if (
                spec.table_name is not None
                and normalize_identifier(spec.table_name) != spec.table_name
            ):
                issues.append(
                    ValidationIssue(
                        f"$.spreadsheet.sheets[{i}].table_name",
                        "must be a valid Glue table name",
                        spec.table_name,
                    )
                )
            specs.append(spec)
        if len({s.name for s in specs}) != len(specs):
            issues.append(ValidationIssue("$.spreadsheet.sheets", "a sheet is named twice"))
        sheets = tuple(specs)
    return SpreadsheetOptions(sheets, block.get("header"), block.get("skip_rows"))


def _fixed_width_options(
    block: dict[str, Any] | None, issues: list[ValidationIssue]
) -> FixedWidthOptions | None:
    """Columns given by ``width`` follow each other; ``start`` (1-based) places one."""
    if block is None:
        return None
    columns = []
    position = 1
    for i, col in enumerate(block["columns"]):
        start = col.get("start", position)
        if start < position:
            issues.append(
                ValidationIssue(
                    f"$.fixed_width.columns[{i}].start",
                    f"overlaps the column before it (which ends at character {position - 1})",
                    start,
                )
            )
        if "width" in col:
            width = col["width"]
        elif "end" in col:
            width = col["end"] - start + 1
            if width < 1:
                issues.append(
                    ValidationIssue(f"$.fixed_width.columns[{i}].end", "ends before it starts")
                )
        else:
            issues.append(
                ValidationIssue(f"$.fixed_width.columns[{i}]", "needs a width or an end position")
            )
            width = 1
        columns.append(FixedWidthColumn(col["name"], start, width))
        position = start + width
    if len({c.name for c in columns}) != len(columns):
        issues.append(ValidationIssue("$.fixed_width.columns", "a column name is used twice"))
    return FixedWidthOptions(tuple(columns), block.get("skip_lines", 0))


def load_document(doc: Any, source: str = "") -> DatasetDocument:
    """:func:`options_from_document` wrapped as a :class:`DatasetDocument`."""
    match, options = options_from_document(doc, source)
    extra = {k: doc[k] for k in ("dataset", "description", "owner") if k in doc}
    return DatasetDocument(match=match, options=options, source=source, extra=extra)
