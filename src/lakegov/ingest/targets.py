"""What a landed file is converted to: the ``datasets/`` document in force for its key, and
the targets that document names.

:class:`DatasetDocuments` reads the config bucket's ``datasets/`` documents (re-read at most
every ``ttl_s``; a refused document does not apply here, the config path reports it) and
picks the most specific one for a key; :func:`conversion_targets` gives the tables a landed
file becomes (one, or one per sheet of a workbook whose document names sheets). Validating
those documents on upload is :mod:`lakegov.ingest.documents`'s.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import Any

from lakegov.convert.options import DatasetDocument, DatasetOptions, load_document, select_document
from lakegov.convert.tables import SPREADSHEET_FORMATS
from lakegov.errors import InvalidDocument
from lakegov.layout import DatasetRef, normalize_identifier
from lakegov.observability import logger

DATASETS_PREFIX = "datasets/"


@dataclass
class DatasetDocuments:
    """The ``datasets/`` documents of the config bucket, re-read at most every ``ttl_s``."""

    s3: Any
    bucket: str
    ttl_s: float = 30.0
    _loaded_at: float = -1e9
    _documents: list[DatasetDocument] = field(default_factory=list)

    def all(self) -> list[DatasetDocument]:
        if time.monotonic() - self._loaded_at > self.ttl_s:
            self._documents = list(self._load())
            self._loaded_at = time.monotonic()
        return self._documents

    def _load(self) -> Any:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=DATASETS_PREFIX):
            for item in page.get("Contents", []):
                key = item["Key"]
                if not key.endswith(".json"):
                    continue
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                try:
                    yield load_document(json.loads(body), source=key)
                except (InvalidDocument, ValueError) as exc:
                    # Refused documents are reported by the config path; here they do not apply.
                    logger.warning(
                        "ignoring invalid dataset document", extra={"key": key, "error": str(exc)}
                    )

    def for_key(self, key: str) -> DatasetDocument | None:
        return select_document(self.all(), key)


def conversion_targets(
    ref: DatasetRef, options: DatasetOptions
) -> list[tuple[DatasetRef, DatasetOptions]]:
    """What one landed file is converted to: itself to its table, or, for a workbook whose
    ``datasets/`` document names sheets, each sheet to its own table (the sheet's
    ``table_name``, else ``<table>_<sheet name>``)."""
    sheets = options.spreadsheet.sheets
    if sheets is None or (options.format or ref.format) not in SPREADSHEET_FORMATS:
        return [(ref, options)]
    targets = []
    for sheet in sheets:
        table = sheet.table_name or normalize_identifier(f"{ref.table_name}_{sheet.name}")
        targets.append((ref.with_table_name(table), replace(options, sheet=sheet.name)))
    return targets
