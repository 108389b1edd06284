"""Producers' side: this account's dataset events, re-published on the central bus.

The service bus's rule invokes the forwarding function with each ``DatasetRefreshed`` and
``SchemaChanged`` (and ``AccessGranted`` / ``AccessRevoked``, for the consumer domains, and
``LineageRecorded``, for domains that subscribe to lineage); the function puts a copy on the central bus with ``PutEvents``. A
bus-to-bus rule would be simpler but cannot work here: EventBridge does not route an
event that arrived from another event bus on to a third bus, and the central bus must
deliver to the domains' buses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lakegov.errors import PermanentError
from lakegov.events import SOURCE, EventPublisher

FORWARDED_DETAIL_TYPES = (
    "DatasetRefreshed",
    "SchemaChanged",
    "AccessGranted",
    "AccessRevoked",
    "LineageRecorded",
)


def forward_event(
    event: Mapping[str, Any], publisher: EventPublisher, *, producer_account: str = ""
) -> dict[str, Any]:
    """Re-publish one EventBridge event (its full envelope) through ``publisher``.

    The detail keeps its contract; ``producer_account`` (this deployment's account, else
    the envelope's) is filled in when the producer left it out, so consumers know where
    the data lives.
    """
    detail_type = str(event.get("detail-type", ""))
    if event.get("source") != SOURCE or detail_type not in FORWARDED_DETAIL_TYPES:
        raise PermanentError(
            f"not a forwarded event: source={event.get('source')!r} detail-type={detail_type!r}"
        )
    detail = dict(event.get("detail") or {})
    account = producer_account or str(event.get("account") or "")
    if account and not detail.get("producer_account"):
        detail["producer_account"] = account
    publisher.publish(detail_type, detail, resources=list(event.get("resources") or []))
    return {
        "forwarded": detail_type,
        "dataset": detail.get("dataset"),
        "to": list(publisher.buses),
        "id": event.get("id"),
    }
