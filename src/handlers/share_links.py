"""A consumer domain's share function: the producer's access events -> RAM, links, report.

``AccessGranted`` accepts the RAM invitation, links the shared database and tables and
grants the named roles; ``AccessRevoked`` removes the links; either way an ``AccessLinked``
report goes to the central bus, whose account audits it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lakegov.app import environment
from lakegov.aws import CREDENTIAL_VARIABLES, Clients
from lakegov.events import EventPublisher
from lakegov.mesh.consumer import AccessChange, link_shared_access, unlink_shared_access
from lakegov.observability import count, logger, metrics, tracer
from lakegov.settings import ConsumerSettings


@cache
def _clients(settings: ConsumerSettings, credentials: tuple[str, ...]) -> Clients:
    """The domain account's clients (with the credentials its environment carries)."""
    return Clients.from_environment(
        dict(zip(CREDENTIAL_VARIABLES, credentials, strict=True)),
        region=settings.region,
        endpoint_url=settings.endpoint_url,
    )


@logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    env = environment()  # the function's own (the embedded runtime hands it over)
    settings = ConsumerSettings.from_env(env)
    clients = _clients(settings, tuple(env.get(name, "") for name in CREDENTIAL_VARIABLES))
    change = AccessChange.from_event(event.raw_event)
    common = {
        "glue": clients("glue"),
        "lakeformation": clients("lakeformation"),
        "account_id": settings.account_id,
        "link_prefix": settings.link_prefix,
        "domain": settings.domain,
    }
    if change.detail_type == "AccessGranted":
        report = link_shared_access(change, ram=clients("ram"), **common)
    else:
        report = unlink_shared_access(change, **common)
    EventPublisher(clients("events"), (settings.central_bus_arn,)).publish("AccessLinked", report)
    count(f"SharedAccess{report['action'].capitalize()}")
    logger.info("shared access", extra={k: report[k] for k in ("action", "status", "problems")})
    return report
