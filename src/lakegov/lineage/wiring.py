"""Building a :class:`LineageContext` from the deployment's settings and clients."""

from __future__ import annotations

from typing import Any

from lakegov.lineage.openlineage import Namespaces
from lakegov.lineage.service import DataZoneLineage, LineageContext

EMBEDDED_NO_DATAZONE = (
    "the embedded runtime has no Amazon DataZone: events are kept in the lake and on the bus only"
)


def lineage_context(app: Any) -> LineageContext:
    """The context for one warm container (``app`` is :class:`lakegov.app.App`)."""
    settings = app.settings
    datazone = None
    skipped = "no DataZone domain configured (DataZoneDomainId)"
    if settings.datazone_domain_id and settings.local_mode:
        skipped = EMBEDDED_NO_DATAZONE
    elif settings.datazone_domain_id:
        datazone = DataZoneLineage(app.client("datazone"), settings.datazone_domain_id)
    return LineageContext(
        records=app.lake_records,
        publisher=app.publisher,
        namespaces=Namespaces(settings.region, settings.account_id),
        formatted_bucket=settings.formatted_bucket,
        s3=app.client("s3"),
        config_bucket=settings.config_bucket,
        glue_prefix=settings.glue_database_prefix,
        datazone=datazone,
        datazone_skipped=skipped,
    )
