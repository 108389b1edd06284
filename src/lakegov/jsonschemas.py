"""Loading the JSON Schemas shipped in ``lakegov/schemas`` (Draft 2020-12), once each."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from lakegov.errors import ValidationIssue

SCHEMA_DIR = Path(__file__).parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Schema by relative name, e.g. ``"events/FileConverted"`` or ``"dataset.schema"``."""
    path = SCHEMA_DIR / (name if name.endswith(".json") else f"{name}.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load_schema(name), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def json_path(error: ValidationError) -> str:
    """``$.entries[2].role_arn`` style path of a jsonschema error."""
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_issues(name: str, document: Any) -> list[ValidationIssue]:
    """Every schema violation of ``document``, sorted by path, as ValidationIssues."""
    issues = []
    for error in sorted(
        validator(name).iter_errors(document), key=lambda e: list(map(str, e.absolute_path))
    ):
        value = error.instance if isinstance(error.instance, str | int | float | bool) else None
        issues.append(ValidationIssue(path=json_path(error), message=error.message, value=value))
    return issues
