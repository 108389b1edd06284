"""Producers' side: this account's dataset events, re-published on the central bus.

A rule on the service bus queues each ``DatasetRefreshed`` and ``SchemaChanged`` (and
``AccessGranted`` / ``AccessRevoked``, for the consumer domains, and ``LineageRecorded``,
for domains that subscribe to lineage) on the mesh-forward queue; the forwarding function
reads it in batches and puts a copy of each event on the central bus, a batch's copies in
as few ``PutEvents`` calls as the limits allow (10 entries, 256 KB a call). A bus-to-bus
rule would be simpler but cannot work here: EventBridge does not route an event that
arrived from another event bus on to a third bus, and the central bus must deliver to the
domains' buses.

Each queue message is its own unit of work: a copy the central bus refuses (after the
publisher's own resends of the refused entries only) fails its message alone, for SQS to
deliver again (and dead-letter after a few receives); a message that is not a forwarded
lakegov event, or whose detail breaks its contract, is logged and dropped with the reason
(no number of retries would change it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lakegov.errors import PermanentError, RetryableError
from lakegov.events import SOURCE, Event, EventContractError, EventPublisher, validate_detail
from lakegov.observability import count, logger
from lakegov.sqs_batch import eventbridge_event

FORWARDED_DETAIL_TYPES = (
    "DatasetRefreshed",
    "SchemaChanged",
    "AccessGranted",
    "AccessRevoked",
    "LineageRecorded",
)


@dataclass(frozen=True)
class Outcome:
    """What became of one queue message: ``FORWARDED`` (its copy is on the central bus)
    or ``DROPPED`` (it cannot be forwarded; ``reason`` says why)."""

    status: str
    detail_type: str = ""
    dataset: str | None = None
    event_id: str | None = None
    to: tuple[str, ...] = ()
    reason: str = ""


def central_copy(event: Mapping[str, Any], *, producer_account: str = "") -> Event:
    """The copy of one EventBridge event (its full envelope) to put on the central bus.

    The detail keeps its contract; ``producer_account`` (this deployment's account, else
    the envelope's) is filled in when the producer left it out, so consumers know where
    the data lives. Raises PermanentError for an event that is not forwarded and
    EventContractError for a detail that breaks its contract or the size limit.
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
    validate_detail(detail_type, detail)
    copy = Event(detail_type, detail, tuple(event.get("resources") or ()))
    copy.entry(bus="")  # the publisher's size check, here: too large fails this copy alone
    return copy


def forward_messages(
    messages: Iterable[tuple[str, str]],
    publisher: EventPublisher,
    *,
    producer_account: str = "",
) -> dict[str, Outcome | RetryableError]:
    """The mesh-forward queue's messages (message id, body) -> each message id's outcome,
    or the RetryableError that fails it (its copy was refused by the central bus).

    A ``PutEvents`` call that fails outright (after the client's own retries) fails the
    messages whose copies it carried, and only those.
    """
    outcomes: dict[str, Outcome | RetryableError] = {}
    copies: list[tuple[str, Mapping[str, Any], Event]] = []
    for message_id, body in messages:
        try:
            event = eventbridge_event(body)
            copies.append(
                (message_id, event, central_copy(event, producer_account=producer_account))
            )
        except (PermanentError, EventContractError) as exc:
            logger.error(
                "message dropped: it cannot be forwarded",
                extra={"message_id": message_id, "reason": str(exc), "body": body[:500]},
            )
            outcomes[message_id] = Outcome("DROPPED", reason=str(exc))
    refused = {id(e) for e in publisher.publish_each(copy for _, _, copy in copies)}
    for message_id, event, copy in copies:
        if id(copy) in refused:
            outcomes[message_id] = RetryableError(
                f"the central bus refused the {copy.detail_type} of event {event.get('id')}"
            )
            continue
        outcomes[message_id] = Outcome(
            "FORWARDED",
            detail_type=copy.detail_type,
            dataset=copy.detail.get("dataset"),
            event_id=event.get("id"),
            to=publisher.buses,
        )
    statuses = [o.status for o in outcomes.values() if isinstance(o, Outcome)]
    for metric, number in (
        ("EventsForwardedToCentralBus", statuses.count("FORWARDED")),
        ("EventsNotForwarded", statuses.count("DROPPED")),
        ("ForwardsRefusedByCentralBus", len(refused)),
    ):
        if number:
            count(metric, number)
    return outcomes
