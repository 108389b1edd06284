"""The one codec between Python values and DynamoDB's attribute values.

Every store over the audit table (audit records, products, the crawl ledger) writes and
reads items through it: floats go in as Decimals (DynamoDB refuses floats), numbers come
back as ``int`` when whole and ``float`` otherwise, sets come back as sorted lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """Python value -> something TypeSerializer accepts (floats become Decimals)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _native(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_native(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_native(v) for v in value)
    return value


def to_attribute(value: Any) -> dict[str, Any]:
    """One attribute value: ``"x"`` -> ``{"S": "x"}``, ``3`` -> ``{"N": "3"}``..."""
    out: dict[str, Any] = _serializer.serialize(_plain(value))
    return out


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """A whole item (or a key) from plain values."""
    return {str(k): to_attribute(v) for k, v in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values from an item as DynamoDB's low-level API returns it."""
    return {k: _native(_deserializer.deserialize(v)) for k, v in item.items()}
