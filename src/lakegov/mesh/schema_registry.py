"""The event contracts in an EventBridge schema registry, published from ``schemas/events/``.

CloudFormation cannot read the contract files, and copying them into the template would
give every contract two sources that drift apart; so the template creates the registry
and ``lakegov mesh publish-schemas`` fills it from the files (idempotent: a schema gets a
new version only when its content changed). Consumers browse and download code bindings
from the registry.

EventBridge registries take OpenAPI 3 or JSON Schema Draft 4; the contracts are Draft
2020-12 for the ``detail`` only, so each is converted to Draft 4 and wrapped in the event
envelope (``source`` lakegov, ``detail-type``, ``detail``), as discovered schemas are.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import DETAIL_TYPES, SOURCE
from lakegov.jsonschemas import load_schema

SCHEMA_TYPE = "JSONSchemaDraft4"
DRAFT4 = "http://json-schema.org/draft-04/schema#"
# 2020-12 keywords that Draft 4 cannot express: refuse rather than publish a looser schema.
_NO_DRAFT4 = frozenset(
    {
        "prefixItems",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "if",
        "then",
        "else",
        "contains",
        "propertyNames",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
    }
)


def schema_name(detail_type: str) -> str:
    """The registry's name for a detail-type (the ``source@DetailType`` convention)."""
    return f"{SOURCE}@{detail_type}"


def _draft4(node: Any, path: str = "$") -> Any:
    if isinstance(node, list):
        return [_draft4(v, f"{path}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _NO_DRAFT4:
            raise ValueError(f"{path}.{key} has no JSON Schema Draft 4 equivalent")
        if key in ("$schema", "$id"):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key == "$defs":
            out["definitions"] = {k: _draft4(v, f"{path}.$defs.{k}") for k, v in value.items()}
        elif key == "$ref" and isinstance(value, str):
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _draft4(v, f"{path}.{key}.{k}") for k, v in value.items()}
        else:
            out[key] = _draft4(value, f"{path}.{key}")
    return out


def registry_schema(detail_type: str) -> dict[str, Any]:
    """The Draft 4 schema of a whole ``detail_type`` event, detail from its contract."""
    contract = copy.deepcopy(load_schema(f"events/{detail_type}"))
    detail = _draft4(contract)
    return {
        "$schema": DRAFT4,
        "title": detail_type,
        "description": contract.get("description", detail_type),
        "type": "object",
        "required": ["source", "detail-type", "detail"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string", "enum": [SOURCE]},
            "detail-type": {"type": "string", "enum": [detail_type]},
            "detail": detail,
        },
    }


def publish_schemas(
    schemas_client: Any, registry: str, detail_types: Iterable[str] = DETAIL_TYPES
) -> dict[str, Any]:
    """Create or update one schema per detail-type in ``registry``; report what changed."""
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for detail_type in detail_types:
        name = schema_name(detail_type)
        desired = registry_schema(detail_type)
        content = json.dumps(desired, indent=2, sort_keys=True)
        description = f"lakegov {detail_type} event (source {SOURCE})"
        try:
            try:
                current = schemas_client.describe_schema(RegistryName=registry, SchemaName=name)
            except ClientError as exc:
                if error_code(exc) != "NotFoundException":
                    raise
                schemas_client.create_schema(
                    RegistryName=registry,
                    SchemaName=name,
                    Type=SCHEMA_TYPE,
                    Content=content,
                    Description=description,
                )
                created.append(name)
                continue
            if json.loads(current.get("Content") or "null") == desired:
                unchanged.append(name)
                continue
            schemas_client.update_schema(
                RegistryName=registry,
                SchemaName=name,
                Type=SCHEMA_TYPE,
                Content=content,
                Description=description,
            )
            updated.append(name)
        except ClientError as exc:
            if is_transient(exc):
                raise RetryableError(f"schema registry: {error_code(exc)}") from exc
            raise PermanentError(f"schema registry refused {name}: {error_code(exc)}") from exc
    return {"registry": registry, "created": created, "updated": updated, "unchanged": unchanged}
