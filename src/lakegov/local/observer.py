"""The embedded runtime's record of the lakegov events on its buses, for whoever waits on
them (the demo, the tests, the load benchmark).

A local-only rule on each bus copies every lakegov event to an observer queue; a thread per
bus reads it (long polling) and records each event with the bus it was seen on and when.
Observing is the runtime's own cost, not the service's: after a receive that was not full,
events are left to gather for ``OBSERVE_GATHER`` seconds, so a busy bus is read ten events
per receive rather than one, unless someone waits for an event
(:meth:`BusObserver.wait_for_event`) or for the runtime to be idle, who is answered as soon
as it arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from lakegov.local.inbox import LONG_POLL, MAX_IDLE_POLL, delete_received
from lakegov.observability import logger

OBSERVE_GATHER = 0.5  # seconds an observer lets events gather after a receive of fewer than 10


class BusObserver:
    """Every lakegov event seen on the observed buses (``events``, in arrival order)."""

    def __init__(
        self,
        client: Callable[..., Any],
        stop: threading.Event,
        *,
        name_prefix: str,
        region: str,
        account: str,
        listeners: list[Callable[[str, Any], None]],
    ) -> None:
        self._client = client
        self._stop = stop
        self._name_prefix = name_prefix
        self._region = region
        self._account = account
        self._listeners = listeners  # the runtime's: told of each event as it is recorded
        self.events: list[dict[str, Any]] = []
        self.queues: dict[str, str] = {}  # bus -> its observer queue's URL
        self._cond = threading.Condition()
        self._waiters = 0  # callers waiting for an event, or for idleness, now

    def add(self, bus: str) -> str:
        """A local-only rule copying every lakegov event on ``bus`` to an observer queue
        (its URL, to read with :meth:`read`)."""
        sqs, events = self._client("sqs"), self._client("events")
        digest = hashlib.sha1(bus.encode()).hexdigest()[:8]  # noqa: S324
        name = f"{self._name_prefix}-observe-{digest}"
        url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{self._region}:{self._account}:{name}"
        events.put_rule(
            Name=name,
            EventBusName=bus,
            State="ENABLED",
            EventPattern=json.dumps({"source": ["lakegov"]}),
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        self.queues[bus] = url
        return url

    def read(self, bus: str, url: str) -> None:
        """Record every event the observer queue of ``bus`` receives, until stopped."""
        sqs = self._client("sqs")
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=LONG_POLL
                ).get("Messages", [])
            except Exception:  # the loop must survive anything a poll throws
                if not self._stop.is_set():  # (stopping: the endpoint is gone)
                    logger.exception("observer poll failed", extra={"bus": bus})
                self._stop.wait(MAX_IDLE_POLL)
                continue
            for message in messages:
                event = json.loads(message["Body"])
                event["_bus"] = bus
                event["_received_at"] = time.time()
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
                for listener in list(self._listeners):
                    listener("event", event)
            if messages:
                delete_received(sqs, url, [m["ReceiptHandle"] for m in messages])
            if 0 < len(messages) < 10:
                with self._cond:
                    self._cond.wait_for(lambda: self._waiters > 0, timeout=OBSERVE_GATHER)

    def wait_for_event(
        self,
        detail_type: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        bus: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The first recorded event of ``detail_type`` (on ``bus``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self.waited_on(), self._cond:
            while True:
                for event in self.events:
                    if event.get("detail-type") != detail_type:
                        continue
                    if bus is not None and event.get("_bus") != bus:
                        continue
                    if predicate is None or predicate(event["detail"]):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({str(e.get("detail-type")) for e in self.events})
                    raise TimeoutError(f"no {detail_type} event within {timeout}s (seen: {seen})")
                self._cond.wait(min(remaining, 0.5))

    @contextlib.contextmanager
    def waited_on(self) -> Iterator[None]:
        """Someone waits for an event or for idleness: each event is recorded as soon as
        it arrives, rather than left to gather."""
        with self._cond:
            self._waiters += 1
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._waiters -= 1

    def events_of(self, detail_type: str, *, bus: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                e
                for e in self.events
                if e.get("detail-type") == detail_type and (bus is None or e.get("_bus") == bus)
            ]
