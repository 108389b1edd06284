"""moto's SQS queues made safe for concurrent requests.

The embedded runtime's endpoint answers SQS requests concurrently (a long poll waits for
messages; holding every other request behind it would stall the runtime), but moto 5.2's
SQS backend only locks a queue to append a message and to wait for one. Its other changes
to a queue are unlocked read-modify-writes, and concurrent requests lose them:

- ``DeleteMessage`` rebuilds the queue's message list without the deleted message and
  assigns it back. Two deletes at once each drop their own message from a copy of the same
  list and the last assignment wins: the other message is back in the queue, still hidden
  for its visibility timeout, and is handed out again when that ends. A message sent while
  a delete rebuilds the list is dropped by the assignment: lost.
- ``ReceiveMessage`` checks a message is visible and then marks it received: two receives
  at once hand the same message to both. It iterates sets another request is changing
  ("Set changed size during iteration", an error answer).
- ``ChangeMessageVisibility`` and ``PurgeQueue`` change the same list and sets.

A 10,000-file burst on the embedded runtime left ~200 ConvertQueue messages hidden for
the queue's 90-minute visibility timeout after their files were converted (deletes undone),
and files whose messages were never handed out. :func:`install` runs each of these
operations holding the queue's own lock (moto's ``Condition``, re-entrant: a long poll's
wait releases it, so sends and deletes go on while a receive waits). Idempotent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lakegov.local.moto_patch import once


@once
def install() -> None:
    from moto.sqs import models

    for name in ("add_message", "delete_message"):
        setattr(models.Queue, name, _holding_the_queue(getattr(models.Queue, name)))
    for name in ("receive_message", "change_message_visibility", "purge_queue"):
        setattr(models.SQSBackend, name, _holding_the_named_queue(getattr(models.SQSBackend, name)))


def _holding_the_queue(method: Callable[..., Any]) -> Callable[..., Any]:
    """A ``Queue`` method run holding that queue's lock."""

    @functools.wraps(method)
    def locked(queue: Any, *args: Any, **kwargs: Any) -> Any:
        with queue._messages_lock:
            return method(queue, *args, **kwargs)

    return locked


def _holding_the_named_queue(method: Callable[..., Any]) -> Callable[..., Any]:
    """An ``SQSBackend`` method on the queue named by its first argument, run holding that
    queue's lock (a queue that does not exist fails as the method itself would)."""

    @functools.wraps(method)
    def locked(backend: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with backend.get_queue(queue_name)._messages_lock:
            return method(backend, queue_name, *args, **kwargs)

    return locked
