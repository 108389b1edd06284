"""moto's SQS queues under concurrent requests, with lakegov.local.moto_sqs installed (as
the embedded runtime's endpoint does): every message sent is handed out once and, once
deleted, stays deleted; a long poll does not hold up the queue while it waits."""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.sqs.models import sqs_backends

from lakegov.local import moto_sqs

ACCOUNT = "000000000731"  # an account of these tests' own: moto's backends are global
REGION = "us-east-1"


@pytest.fixture
def queue() -> Iterator[tuple[Any, str]]:
    moto_sqs.install()
    backend = sqs_backends[ACCOUNT][REGION]
    name = f"burst-{uuid.uuid4().hex[:8]}"
    backend.create_queue(name, VisibilityTimeout="3600")
    yield backend, name
    backend.delete_queue(name)


def test_concurrent_sends_receives_and_deletes_lose_nothing_and_undo_nothing(queue):
    backend, name = queue
    count = 600
    received: list[str] = []
    to_delete: list[str] = []
    errors: list[str] = []
    sent = threading.Event()

    def send() -> None:
        for n in range(count):
            backend.send_message(name, f"m{n}")
        sent.set()

    def receive() -> None:
        while len(received) < count and not (sent.is_set() and time.monotonic() > give_up):
            try:
                messages = backend.receive_message(name, 10, 0, 3600)
            except Exception as exc:
                errors.append(f"receive: {exc!r}")
                continue
            received.extend(m.body for m in messages)
            to_delete.extend(m.receipt_handle for m in messages)

    def delete() -> None:
        while to_delete or (len(received) < count and time.monotonic() < give_up):
            try:
                receipt = to_delete.pop()
            except IndexError:
                time.sleep(0.001)
                continue
            try:
                backend.delete_message(name, receipt)
            except Exception as exc:
                errors.append(f"delete: {exc!r}")

    give_up = time.monotonic() + 60
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads take turns every few bytecodes: races show
    try:
        threads = [threading.Thread(target=send)]
        threads += [threading.Thread(target=receive) for _ in range(2)]
        threads += [threading.Thread(target=delete) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)

    assert errors == []
    assert sorted(received) == sorted(f"m{n}" for n in range(count))  # each once
    left = backend.get_queue(name)
    assert left._messages == []  # nothing deleted came back, nothing is left in flight
    assert left.approximate_number_of_messages_not_visible == 0


def test_a_long_poll_waits_without_holding_the_queue(queue):
    backend, name = queue
    answer: list[list[Any]] = []
    poll = threading.Thread(target=lambda: answer.append(backend.receive_message(name, 10, 10, 60)))
    poll.start()
    time.sleep(0.3)  # the poll is waiting on an empty queue
    started = time.monotonic()
    backend.send_message(name, "late")
    sent_in = time.monotonic() - started
    poll.join(15)
    assert sent_in < 5, "the send waited for the long poll"
    assert [m.body for m in answer[0]] == ["late"]
    (message,) = answer[0]
    backend.delete_message(name, message.receipt_handle)  # as well while nothing waits
    assert backend.get_queue(name)._messages == []
