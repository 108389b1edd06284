"""Landed files to Parquet: layout, options, the streaming engine and its CLI.

The handler calls :func:`parse_key`, picks a :class:`DatasetOptions` (from a ``datasets/``
document via :func:`options_from_document`), then :func:`convert`.
"""

from lakegov.convert.engine import BadRow, ConversionResult, convert, convert_file
from lakegov.convert.layout import DatasetRef, normalize_identifier, parse_key
from lakegov.convert.options import (
    ColumnSpec,
    DatasetDocument,
    DatasetMatch,
    DatasetOptions,
    load_document,
    options_from_document,
    select_document,
)
from lakegov.schema import SchemaDiff, compare_schemas, schema_fingerprint

__all__ = [
    "BadRow",
    "ColumnSpec",
    "ConversionResult",
    "DatasetDocument",
    "DatasetMatch",
    "DatasetOptions",
    "DatasetRef",
    "SchemaDiff",
    "compare_schemas",
    "convert",
    "convert_file",
    "load_document",
    "normalize_identifier",
    "options_from_document",
    "parse_key",
    "schema_fingerprint",
    "select_document",
]
