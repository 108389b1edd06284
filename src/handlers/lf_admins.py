"""CloudFormation custom resources: the stack's governance roles as data lake
administrators, and the LF-Tags the dbt job associates (``Custom::LakeFormationTagAssociation``).
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import get_app
from lakegov.governance.admins import apply_custom_resource, apply_tag_association
from lakegov.observability import logger

PHYSICAL_ID = "lakegov-lake-formation-administrators"
TAG_ASSOCIATION = "Custom::LakeFormationTagAssociation"
TAG_PHYSICAL_ID = "lakegov-dbt-lf-tag-association"


RESPOND_ATTEMPTS = 4  # the resources' ServiceTimeout (300 s) bounds the wait anyway


def respond(url: str, body: dict[str, Any]) -> None:
    """Send the outcome to CloudFormation's pre-signed URL (no content type: S3 signs none)."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's https pre-signed URL
        url, data=data, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(data))}
    )
    for attempt in range(RESPOND_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                reply.read()
            return
        except OSError:  # urllib's errors included: without a reply the stack waits
            logger.warning("sending the outcome to CloudFormation failed", exc_info=True)
            if attempt + 1 == RESPOND_ATTEMPTS:
                raise
            time.sleep(2**attempt)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    outcome: dict[str, Any] = {
        "PhysicalResourceId": event.get("PhysicalResourceId")
        or (TAG_PHYSICAL_ID if event.get("ResourceType") == TAG_ASSOCIATION else PHYSICAL_ID),
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
    }
    try:
        lakeformation = get_app().client("lakeformation")
        if event.get("ResourceType") == TAG_ASSOCIATION:
            tags = apply_tag_association(lakeformation, event)
            logger.info("LF-Tags the dbt job may associate", extra={"tags": tags})
            outcome.update(Status="SUCCESS", Data={"TagKeys": ",".join(sorted(tags))})
        else:
            admins = apply_custom_resource(lakeformation, event)
            logger.info("data lake administrators", extra={"administrators": admins})
            outcome.update(Status="SUCCESS", Data={"Administrators": ",".join(admins)[:3500]})
    except Exception as exc:  # CloudFormation waits an hour for a reply that never comes
        logger.exception("changing the data lake administrators failed")
        reason = f"{type(exc).__name__}: {exc} (log stream {context.log_stream_name})"
        outcome.update(Status="FAILED", Reason=reason[:1000])
    respond(event["ResponseURL"], outcome)
