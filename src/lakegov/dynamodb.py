"""The one codec between Python values and DynamoDB's attribute values.

Every store over the audit table (audit records, products, the crawl ledger) writes and
reads items through it: floats go in as Decimals (DynamoDB refuses floats), numbers come
back as ``int`` when whole and ``float`` otherwise, sets come back as sorted lists.
:func:`batch_get` is the one BatchGetItem loop (chunks of 100 keys, unprocessed keys asked
again) the stores share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from lakegov.errors import RetryableError

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


MAX_KEYS_PER_BATCH_GET = 100  # BatchGetItem limit
BATCH_GET_ROUNDS = 10  # calls before keys DynamoDB keeps leaving unprocessed fail the read


def batch_get(
    client: Any, table: str, keys: Iterable[Mapping[str, Any]], *, consistent: bool = True
) -> list[dict[str, Any]]:
    """The items (low-level form) at ``keys`` (low-level keys) of ``table`` that exist, in
    BatchGetItem calls of at most 100 keys; keys DynamoDB leaves unprocessed (throttling)
    are asked for again, and a read still incomplete after a few calls raises
    RetryableError."""
    pending = [dict(k) for k in keys]
    found: list[dict[str, Any]] = []
    for _ in range(BATCH_GET_ROUNDS):
        if not pending:
            return found
        chunk, pending = pending[:MAX_KEYS_PER_BATCH_GET], pending[MAX_KEYS_PER_BATCH_GET:]
        response = client.batch_get_item(
            RequestItems={table: {"Keys": chunk, "ConsistentRead": consistent}}
        )
        found.extend(response.get("Responses", {}).get(table, []))
        unprocessed = response.get("UnprocessedKeys", {}).get(table, {})
        pending = [*unprocessed.get("Keys", []), *pending]
    if pending:
        raise RetryableError(f"BatchGetItem on {table} left {len(pending)} keys unprocessed")
    return found
