"""``lakegov redrive``: what sits in each dead-letter queue, why, and replaying it.

A dead-letter queue is any queue another queue's ``RedrivePolicy`` points at (the convert
queue, the embedded runtime's function inboxes) or whose name says so (``DeadLetter``,
``dlq``: EventBridge target and Lambda ``OnFailure`` destinations). Replaying a message
sends it back where it came from:

* to its source queue, when one queue redrives into this DLQ;
* for a Lambda ``OnFailure`` record (``requestPayload``), as an asynchronous invoke of the
  function with the original event;
* otherwise it stays, and the listing says why it cannot be replayed automatically.

Replays are safe to repeat: every handler claims its unit of work in the audit table, so
a message that was in fact processed is recognised as a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code

MAX_PEEK = 100
# The template output listing a deployment's own dead-letter queues (ARNs, comma-separated).
DEAD_LETTER_OUTPUT = "DeadLetterQueueArns"
_MISSING_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at: str
    summary: str
    reason: str


@dataclass
class DeadLetterQueue:
    name: str
    url: str
    arn: str
    depth: int
    sources: list[str] = field(default_factory=list)  # queue URLs that redrive into it
    messages: list[DeadLetter] = field(default_factory=list)


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def find_dead_letter_queues(
    sqs: Any, prefix: str = "", *, only: Collection[str] | None = None
) -> list[DeadLetterQueue]:
    """The DLQs among ``only`` (queue ARNs: a stack's own), or, with ``only`` None, every
    DLQ in the account and region (optionally only those whose name starts with ``prefix``).
    """
    urls: list[str] = []
    if only is not None:
        for arn in only:
            name = arn.rsplit(":", 1)[-1]
            if not name.startswith(prefix):
                continue
            try:
                urls.append(sqs.get_queue_url(QueueName=name)["QueueUrl"])
            except ClientError as exc:
                if error_code(exc) not in _MISSING_QUEUE:
                    raise  # a queue of the stack that is gone is simply not listed
    else:
        kwargs: dict[str, Any] = {"QueueNamePrefix": prefix} if prefix else {}
        for page in sqs.get_paginator("list_queues").paginate(**kwargs):
            urls.extend(page.get("QueueUrls", []))
    attrs = {
        url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for url in urls
    }
    by_arn = {a["QueueArn"]: url for url, a in attrs.items()}
    sources: dict[str, list[str]] = {}
    for url, a in attrs.items():
        if "RedrivePolicy" in a:
            target = json.loads(a["RedrivePolicy"])["deadLetterTargetArn"]
            sources.setdefault(target, []).append(url)
    if only is not None:  # the source queues are not among the DLQs: ask SQS for them
        for url, a in attrs.items():
            pages = sqs.get_paginator("list_dead_letter_source_queues").paginate(QueueUrl=url)
            found = [u for page in pages for u in page.get("queueUrls", [])]
            sources[a["QueueArn"]] = found
            by_arn.update({f"source:{u}": u for u in found})
    dlqs = []
    for url, a in attrs.items():
        name = _name(url)
        named = any(word in name.lower() for word in ("deadletter", "dlq", "dead-letter"))
        if only is not None or a["QueueArn"] in sources or named:
            dlqs.append(
                DeadLetterQueue(
                    name=name,
                    url=url,
                    arn=a["QueueArn"],
                    depth=int(a.get("ApproximateNumberOfMessages", 0)),
                    sources=[u for u in sources.get(a["QueueArn"], []) if u in by_arn.values()],
                )
            )
    return sorted(dlqs, key=lambda q: q.name)


def describe_message(body: str) -> tuple[str, str]:
    """(what it is, why it failed) for a dead-lettered body, as far as the body tells."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return body[:80], "not JSON"
    if isinstance(data, dict) and "requestPayload" in data:  # Lambda OnFailure record
        ctx = data.get("requestContext", {})
        payload = data.get("responsePayload") or {}
        reason = f"{ctx.get('condition', 'failed')}: {payload.get('errorType', '')} {payload.get('errorMessage', '')}"
        what, _ = describe_message(json.dumps(data["requestPayload"]))
        return what, reason.strip()
    if isinstance(data, dict) and "detail-type" in data:
        detail = data.get("detail") or {}
        key = (
            (detail.get("object") or {}).get("key")
            or detail.get("key")
            or detail.get("table")
            or ""
        )
        return (
            f"{data['detail-type']} {key}".strip(),
            "handler failed on every delivery (see logs / status)",
        )
    return json.dumps(data)[:80], "unknown shape"


def peek(sqs: Any, queue: DeadLetterQueue, limit: int = MAX_PEEK) -> list[DeadLetter]:
    """Read up to ``limit`` messages without removing them (they reappear after 30 s)."""
    seen: dict[str, DeadLetter] = {}
    while len(seen) < min(limit, queue.depth or limit):
        batch = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=30, AttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        for m in batch:
            what, why = describe_message(m["Body"])
            a = m.get("Attributes", {})
            seen.setdefault(
                m["MessageId"],
                DeadLetter(
                    m["MessageId"],
                    m["ReceiptHandle"],
                    m["Body"],
                    int(a.get("ApproximateReceiveCount", 0)),
                    a.get("SentTimestamp", ""),
                    what,
                    why,
                ),
            )
    queue.messages = list(seen.values())
    for m in queue.messages:  # make them visible again at once for the next reader
        sqs.change_message_visibility(
            QueueUrl=queue.url, ReceiptHandle=m.receipt_handle, VisibilityTimeout=0
        )
    return queue.messages


def replay(
    sqs: Any,
    queue: DeadLetterQueue,
    *,
    message_ids: Iterable[str] | None = None,
    invoke: Callable[[str, str], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Send selected (default: all) messages back where they came from; returns counts."""
    wanted = set(message_ids) if message_ids is not None else None
    counts = {"replayed": 0, "skipped": 0, "kept": 0}
    handled: set[str] = set()
    left: list[str] = []
    total = queue.depth
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue.url, MaxNumberOfMessages=10, VisibilityTimeout=60, AttributeNames=["All"]
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in handled]
        if not fresh:
            break
        for m in fresh:
            handled.add(m["MessageId"])
            if wanted is not None and m["MessageId"] not in wanted:
                counts["skipped"] += 1
                left.append(m["ReceiptHandle"])
                continue
            if _send_back(sqs, queue, m["Body"], invoke):
                sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=m["ReceiptHandle"])
                counts["replayed"] += 1
            else:
                counts["kept"] += 1
                left.append(m["ReceiptHandle"])
            if progress:
                progress(counts["replayed"] + counts["kept"], total)
    for handle in left:  # skipped and kept messages: visible again for the next run
        sqs.change_message_visibility(QueueUrl=queue.url, ReceiptHandle=handle, VisibilityTimeout=0)
    return counts


def _send_back(
    sqs: Any, queue: DeadLetterQueue, body: str, invoke: Callable[[str, str], None] | None
) -> bool:
    """Send one message back by its shape: a Lambda failure record is re-invoked with its
    original event; anything else goes back to the queue that redrove it here."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and "requestPayload" in data:
        function_arn = str(data.get("requestContext", {}).get("functionArn", "")).rsplit(":$", 1)[0]
        if function_arn and invoke is not None:
            invoke(function_arn, json.dumps(data["requestPayload"]))
            return True
        return False
    if queue.sources:
        sqs.send_message(QueueUrl=queue.sources[0], MessageBody=body)
        return True
    return False
