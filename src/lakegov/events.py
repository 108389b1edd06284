"""The events lakegov publishes: their contracts and the publisher.

Every event has ``source = "lakegov"`` and one of :data:`DETAIL_TYPES`; its detail must
validate against ``schemas/events/<DetailType>.json`` before it leaves the process, so a
consumer can rely on the contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lakegov.errors import LakegovError, RetryableError
from lakegov.jsonschemas import schema_issues
from lakegov.observability import logger

SOURCE = "lakegov"
DETAIL_TYPES = (
    "FileConverted",
    "FileRejected",
    "SchemaChanged",
    "DatasetRefreshed",
    "ProductRunStarted",
    "ProductRunFinished",
    "GovernanceApplied",
    "GovernanceRejected",
    "DriftDetected",
    "LineageRecorded",
    "AccessGranted",
    "AccessRevoked",
    "AccessLinked",
)
MAX_ENTRIES_PER_CALL = 10  # PutEvents limit
MAX_EVENT_BYTES = 256 * 1024


class EventContractError(LakegovError):
    """An event we were about to publish does not match its schema: a bug, not bad input."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_detail(detail_type: str, detail: Mapping[str, Any]) -> None:
    if detail_type not in DETAIL_TYPES:
        raise EventContractError(f"unknown detail-type {detail_type!r}")
    issues = schema_issues(f"events/{detail_type}", dict(detail))
    if issues:
        raise EventContractError(
            f"{detail_type} detail breaks its contract: " + "; ".join(map(str, issues))
        )


@dataclass(frozen=True)
class Event:
    detail_type: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...] = ()

    def entry(self, bus: str) -> dict[str, Any]:
        body = json.dumps(self.detail, default=str, separators=(",", ":"))
        entry = {
            "Source": SOURCE,
            "DetailType": self.detail_type,
            "Detail": body,
            "EventBusName": bus,
            "Resources": list(self.resources),
        }
        size = _entry_bytes(entry)
        if size >= MAX_EVENT_BYTES:  # PutEvents: an entry must be less than 256 KB
            raise EventContractError(f"{self.detail_type} event is {size} bytes, over the limit")
        return entry


def _entry_bytes(entry: Mapping[str, Any]) -> int:
    """An entry's size as PutEvents counts it (Time, Source, DetailType, Detail, Resources)."""
    fields = [entry.get("Source", ""), entry.get("DetailType", ""), entry.get("Detail", "")]
    return 14 + sum(len(str(f).encode()) for f in [*fields, *entry.get("Resources", [])])


def _calls(
    entries: list[tuple[int, dict[str, Any]]],
) -> Iterable[list[tuple[int, dict[str, Any]]]]:
    """(event index, entry) pairs grouped into PutEvents calls: at most 10 entries and
    256 KB each."""
    chunk: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for pair in entries:
        entry_size = _entry_bytes(pair[1])
        if chunk and (len(chunk) == MAX_ENTRIES_PER_CALL or size + entry_size >= MAX_EVENT_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(pair)
        size += entry_size
    if chunk:
        yield chunk


@dataclass
class EventPublisher:
    """Publishes validated events to one or more buses (names or ARNs).

    ``events_client`` is an EventBridge client. Failed entries raise RetryableError so the
    unit of work is retried; an invalid detail raises EventContractError before any call.
    """

    events_client: Any
    buses: tuple[str, ...]
    record: bool = False  # keep what was published (tests); off in Lambda, where it would grow
    published: list[Event] = field(default_factory=list)
    attempts: int = 3

    def publish(
        self, detail_type: str, detail: Mapping[str, Any], resources: Iterable[str] = ()
    ) -> None:
        self.publish_all([Event(detail_type, detail, tuple(resources))])

    def publish_all(self, events: Iterable[Event]) -> None:
        """Publish ``events`` in as few calls as the limits allow; raises RetryableError
        when any of them could not be published (the whole unit of work is retried)."""
        failed = self.publish_each(events)
        if failed:
            raise RetryableError(
                f"PutEvents failed for {len(failed)} of the events: "
                + ", ".join(sorted({e.detail_type for e in failed}))
            )

    def publish_each(self, events: Iterable[Event]) -> list[Event]:
        """Publish ``events`` (events of several units of work, batched into PutEvents calls
        of up to 10 entries and 256 KB) and return those that could not be published after
        :attr:`attempts` tries, for their callers to retry or report their units of work.

        An invalid detail raises EventContractError before any call; a call that fails
        outright (after the client's own retries) fails its own events only: those of
        calls that went through are not sent again by a retry of the others.
        """
        batch = list(events)
        for event in batch:
            validate_detail(event.detail_type, event.detail)
        entries = [
            (i, event.entry(bus)) for i, event in enumerate(batch) for bus in self.buses if bus
        ]
        failed: set[int] = set()
        for chunk in _calls(entries):
            failed.update(self._put(chunk))
        if self.record:
            self.published.extend(e for i, e in enumerate(batch) if i not in failed)
        return [e for i, e in enumerate(batch) if i in failed]

    def _put(self, chunk: list[tuple[int, dict[str, Any]]]) -> set[int]:
        """Send a chunk; resend only the entries that failed (a resend of the whole chunk
        would duplicate the ones that went through). Returns the indexes of the events
        whose entries still failed after the last attempt."""
        failures: list[dict[str, Any]] = []
        for _ in range(self.attempts):
            try:
                response = self.events_client.put_events(Entries=[entry for _, entry in chunk])
            except (BotoCoreError, ClientError) as exc:  # after the client's own retries
                logger.warning(
                    "PutEvents call failed", extra={"entries": len(chunk), "error": repr(exc)}
                )
                return {index for index, _ in chunk}
            if not response.get("FailedEntryCount", 0):
                return set()
            results = response.get("Entries", [])
            failures = [r for r in results if r.get("ErrorCode")]
            chunk = [
                pair
                for pair, result in zip(chunk, results, strict=False)
                if result.get("ErrorCode")
            ]
        logger.warning(
            "PutEvents entries failed after retries",
            extra={"failed": len(failures), "errors": failures[:3]},
        )
        return {index for index, _ in chunk}
