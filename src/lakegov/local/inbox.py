"""The receipts of messages the embedded runtime has handled, deleted in batches.

Every SQS call the runtime makes is work taken from moto's server, which answers one
request at a time: a message handled is deleted with others (``DeleteMessageBatch``, ten
per call), not one call per message.
"""

from __future__ import annotations

import threading
from typing import Any

from lakegov.observability import logger

DELETE_AFTER = 1.0  # seconds a delivered event's receipt may wait to be deleted with others
# WaitTimeSeconds of the runtime's receives (SQS's longest, as Lambda's pollers use): moto
# answers as soon as a message arrives, else after this; stopping the runtime ends a receive
# still waiting
LONG_POLL = 20
MAX_IDLE_POLL = 0.5  # seconds before receiving again after a failed receive


def delete_received(sqs: Any, url: str, receipts: list[str]) -> None:
    """Delete received messages from ``url``, ten per call (DeleteMessageBatch's limit);
    an entry SQS refuses is logged (its message comes back after its visibility timeout)."""
    for start in range(0, len(receipts), 10):
        chunk = receipts[start : start + 10]
        answer = sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
        )
        for failed in answer.get("Failed", []):
            logger.warning("message not deleted", extra={"queue": url, "error": failed})


class Inbox:
    """An EventBridge source's inbox (the queue standing in for Lambda's async invocation
    queue) and the receipts of its delivered events, deleted ten per call rather than one
    call per event.

    A receipt waits at most ``DELETE_AFTER`` seconds (a timer deletes what waits then), far
    within its message's visibility timeout (the function's timeout + 30 s): no event is
    delivered twice. ``LocalRuntime.wait_idle`` and ``stop`` delete what waits at once."""

    def __init__(self, sqs: Any, url: str, *, wait: float = DELETE_AFTER) -> None:
        self.sqs = sqs
        self.url = url
        self.wait = wait
        self._lock = threading.Lock()
        self._delivered: list[str] = []
        self._timer: threading.Timer | None = None

    def delivered(self, receipt: str) -> None:
        """An event's invocation succeeded: its message is to be deleted."""
        with self._lock:
            self._delivered.append(receipt)
            if len(self._delivered) >= 10:
                due = self._take()
            else:
                due = []
                if self._timer is None:
                    self._timer = threading.Timer(self.wait, self._flush_waited)
                    self._timer.daemon = True
                    self._timer.start()
        if due:
            delete_received(self.sqs, self.url, due)

    def flush(self) -> None:
        """Delete the receipts waiting, now."""
        with self._lock:
            due = self._take()
        if due:
            delete_received(self.sqs, self.url, due)

    def _flush_waited(self) -> None:
        try:
            self.flush()
        except Exception:  # a timer's thread: log, the messages come back if not deleted
            logger.exception("deleting delivered events failed", extra={"queue": self.url})

    def _take(self) -> list[str]:
        """The receipts waiting, no longer waiting (under the lock)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due, self._delivered = self._delivered, []
        return due
