"""The JSON Schemas shipped in ``lakegov/schemas`` (Draft 2020-12): loaded once, and their
errors phrased for a person.

Every document kind and every event payload is checked here, so each gets the same
messages: "expected string, got number", "missing required field 'domain'", "unknown
field 'Tabel'; expected only ...", each at its JSON path with the offending value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
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
def validator(name: str, definition: str = "") -> Draft202012Validator:
    """The validator of schema ``name``, or of its ``$defs/<definition>`` alone."""
    schema = load_schema(name)
    if definition:
        schema = {"$ref": f"#/$defs/{definition}", "$defs": schema["$defs"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def path_str(parts: Iterable[str | int], root: str = "$") -> str:
    """``$.entries[2].role_arn`` from ``["entries", 2, "role_arn"]``."""
    out = root
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type (``object``, ``array``, ``null``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def short_value(value: Any) -> Any:
    """The offending value, as is when small, else a truncated JSON rendering."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    try:
        text = json.dumps(value, default=str)
    except (ValueError, RecursionError):
        text = f"<{json_type(value)}>"
    return text if len(text) <= 200 else text[:200] + "..."


def _render(value: Any) -> str:
    """A value as JSON text (``null``, ``"x"``), shortened."""
    short = short_value(value)
    if isinstance(short, str) and not isinstance(value, str):
        return short
    return json.dumps(short)


def readable_message(error: ValidationError) -> str:
    """A jsonschema error phrased as 'expected ..., got ...'."""
    inst = error.instance
    v = error.validator
    if v == "required":
        missing = [p for p in error.validator_value if not (isinstance(inst, dict) and p in inst)]
        return f"missing required field {', '.join(repr(m) for m in missing)}"
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in inst if k not in allowed)
        return (
            f"unknown field {', '.join(repr(e) for e in extra)}; expected only {', '.join(allowed)}"
        )
    if v == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {json_type(inst)}"
    if v == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        return f"expected one of {options}; got {_render(inst)}"
    if v == "const":
        return f"expected {_render(error.validator_value)}; got {_render(inst)}"
    if v == "minLength":
        return f"expected a non-empty string (at least {error.validator_value} characters)"
    if v == "maxLength":
        return f"expected at most {error.validator_value} characters"
    if v == "minItems":
        return f"expected at least {error.validator_value} item(s)"
    if v == "maxItems":
        return f"expected at most {error.validator_value} item(s)"
    return str(error.message)


def _issue(error: ValidationError, prefix: list[str | int]) -> ValidationIssue:
    parts: list[str | int] = [*prefix, *error.absolute_path]
    value = error.instance
    if error.validator == "additionalProperties" and isinstance(value, dict):
        allowed = (error.schema.get("properties") or {}).keys()
        extra = [k for k in value if k not in allowed]
        if len(extra) == 1:  # point at the field itself
            parts.append(str(extra[0]))
            value = value[extra[0]]
        else:
            value = sorted(str(k) for k in extra)
    elif isinstance(value, dict | list) and error.validator == "required":
        value = None
    return ValidationIssue(path_str(parts), readable_message(error), short_value(value))


def schema_issues(
    name: str, document: Any, *, definition: str = "", prefix: list[str | int] | None = None
) -> list[ValidationIssue]:
    """Every violation of schema ``name`` (or its ``definition``) by ``document``, by path.

    ``prefix``: where ``document`` sits in a larger one (its issues' paths start there).
    """
    issues = [_issue(e, prefix or []) for e in validator(name, definition).iter_errors(document)]
    issues.sort(key=lambda i: i.path)
    return issues
