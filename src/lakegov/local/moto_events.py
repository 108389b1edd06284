"""``PutEvents`` to another account's event bus, added to moto.

On AWS an account may put events on a bus of another account when that bus's resource
policy allows it (a consumer domain reporting back to the central bus). moto 5.2 reads
only the bus *name* of an ARN and looks it up in the caller's own account, so the event
is refused (``ResourceNotFoundException``) or, worse, lands on a same-named local bus.

:func:`install` delivers an entry whose ``EventBusName`` is the ARN of another account's
bus to that account's bus, when its policy has an ``Allow`` of ``events:PutEvents`` for
the caller's account (its root ARN or id) or for everyone without conditions; otherwise
the entry fails with ``AccessDeniedException``, as AWS answers. The event's ``account``
is the caller's. Idempotent.

moto 5.2 also leaves ``account`` out of the event a rule delivers to its targets (its
default input template lacks it, though its paths map reads it); AWS delivers the whole
event, and the central account's audit reads who sent a report from it: the template is
given the field.

moto 5.2's S3 also sends an ``Object Tags Added`` event (``s3:ObjectTagging:Put``) for
every object it creates (``PutObject``, ``CopyObject``, ``CompleteMultipartUpload``), tags
or not: it sets a new object's tags through the same code as ``PutObjectTagging``; and
two ``Object Created`` events for a completed multipart upload (``Put``, then
``CompleteMultipartUpload``): a large file landed with the AWS CLI reached the service
twice. AWS sends ``Object Tags Added`` for ``PutObjectTagging`` only, and one event per
created object: :func:`s3_events_as_aws_sends_them` drops the others. And moto sends
nothing when a delete in a versioned bucket leaves a delete marker (``aws s3 rm`` of a
landed file or of a governance document), where AWS sends ``Object Deleted``
(``s3:ObjectRemoved:DeleteMarkerCreated``): it is sent here, in moto's form of that event
(its detail says ``reason: ObjectRemoved`` and has no ``deletion-type``; AWS says
``DeleteObject`` and ``Delete Marker Created``: nothing in lakegov reads either).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from lakegov.local.moto_patch import once

_BUS_ARN = re.compile(
    r"^arn:aws[a-z-]*:events:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):event-bus/(?P<name>.+)$"
)


@once
def install() -> None:
    from moto.events import models

    original = models.EventsBackend.put_events

    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(events) > 10:
            return list(original(self, events))  # AWS's (and moto's) 10-entry refusal
        local: list[tuple[int, dict[str, Any]]] = []
        answers: dict[int, dict[str, Any]] = {}
        for index, event in enumerate(events):
            match = _BUS_ARN.match(str(event.get("EventBusName") or ""))
            if not match or match["account"] == self.account_id:
                local.append((index, event))
                continue
            answers[index] = _deliver(models, original, self.account_id, match, event)
        if local:
            for (index, _), answer in zip(
                local, original(self, [e for _, e in local]), strict=True
            ):
                answers[index] = answer
        return [answers[i] for i in range(len(events))]

    models.EventsBackend.put_events = put_events  # type: ignore[method-assign]
    s3_events_as_aws_sends_them()
    template = models.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE
    if '"account"' not in template:
        models.EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = template.replace(
            '"source": "<source>", ', '"source": "<source>", "account": "<account>", ', 1
        )


class _DeleteMarkerView:
    """A delete marker as moto's notifications read an object: no size, no ETag."""

    def __init__(self, name: str, version_id: str) -> None:
        self.name, self.version_id = name, version_id
        self.size, self.etag = 0, ""


def s3_events_as_aws_sends_them() -> None:
    """S3's event notifications for tags, multipart uploads and delete markers as AWS
    sends them (see the module's docstring), to every destination (EventBridge, queues,
    topics). Idempotent."""
    from moto.s3 import models, notifications, responses

    if getattr(notifications.send_event, "_lakegov_as_aws", False):
        return
    send_event = notifications.send_event
    kinds = notifications.S3NotificationEvent
    answering = threading.local()  # what this thread answers now: "tagging", "completing"

    def send_event_as_aws(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
        now = getattr(answering, "request", "")
        if event_name == kinds.OBJECT_TAGGING_PUT_EVENT and now != "tagging":
            return  # tags set while creating an object: its Object Created says it
        if event_name == kinds.OBJECT_CREATED_PUT_EVENT and now == "completing":
            return  # the upload's object: its CompleteMultipartUpload event says it
        send_event(account_id, event_name, bucket, key)

    def answering_as(request: str, answer: Any) -> Any:
        def answered(self: Any, *args: Any, **kwargs: Any) -> Any:
            answering.request = request
            try:
                return answer(self, *args, **kwargs)
            finally:
                answering.request = ""

        return answered

    set_delete_marker = models.S3Backend._set_delete_marker

    def set_delete_marker_and_say_so(self: Any, bucket_name: str, key_name: str) -> Any:
        marker = set_delete_marker(self, bucket_name, key_name)
        notifications.send_event(
            self.account_id,
            kinds.OBJECT_REMOVED_DELETE_MARKER_CREATED_EVENT,
            self.get_bucket(bucket_name),
            _DeleteMarkerView(key_name, marker.version_id),
        )
        return marker

    send_event_as_aws._lakegov_as_aws = True  # type: ignore[attr-defined]
    notifications.send_event = send_event_as_aws
    models.S3Backend._set_delete_marker = set_delete_marker_and_say_so  # type: ignore[method-assign]
    responses.S3Response.put_object_tagging = answering_as(  # type: ignore[method-assign]
        "tagging", responses.S3Response.put_object_tagging
    )
    models.S3Backend.complete_multipart_upload = answering_as(  # type: ignore[method-assign]
        "completing", models.S3Backend.complete_multipart_upload
    )


def _allowed(policy: str | None, caller: str) -> bool:
    try:
        statements = json.loads(policy or "{}").get("Statement") or []
    except ValueError:
        return False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if statement.get("Effect") != "Allow" or not {"events:PutEvents", "events:*"} & set(
            actions
        ):
            continue
        principal = statement.get("Principal")
        if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
            if not statement.get("Condition"):
                return True
            continue
        listed = principal.get("AWS") if isinstance(principal, dict) else None
        listed = listed if isinstance(listed, list) else [listed]
        if any(str(p) in (caller, f"arn:aws:iam::{caller}:root") for p in listed):
            return True
    return False


class _SentBy:
    """The receiving account's backend, as seen by ``PutEvents``, with the sender's
    account: moto stamps each delivered event with ``self.account_id``."""

    def __init__(self, backend: Any, sender: str) -> None:
        self._backend = backend
        self.account_id = sender

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _deliver(
    models: Any, original: Any, caller: str, match: re.Match[str], event: dict[str, Any]
) -> dict[str, Any]:
    backend = models.events_backends[match["account"]][match["region"]]
    bus = backend.event_buses.get(match["name"])
    if bus is None:
        return {
            "ErrorCode": "ResourceNotFoundException",
            "ErrorMessage": f"Event bus {match['name']} does not exist.",
        }
    if not _allowed(bus.policy, caller):
        return {
            "ErrorCode": "AccessDeniedException",
            "ErrorMessage": f"account {caller} is not authorized to put events on {match['name']}",
        }
    (answer,) = original(_SentBy(backend, caller), [{**event, "EventBusName": match["name"]}])
    return dict(answer)
