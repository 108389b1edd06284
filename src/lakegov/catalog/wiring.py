"""Building the catalog's collaborators from the per-container App (handlers and CLI).

The only place that chooses the crawler adapter: Glue's ``StartCrawler`` when deployed,
the local stand-in (:mod:`lakegov.local.crawler`) on the embedded runtime.
"""

from __future__ import annotations

from lakegov.app import App
from lakegov.catalog.crawler import GlueCrawlerStarter, StartCrawler, sqs_send_later
from lakegov.catalog.service import CatalogServices


def crawler_starter(app: App) -> StartCrawler:
    glue = app.client("glue")
    if app.settings.local_mode:
        from lakegov.local.crawler import LocalCrawlerStarter  # the embedded runtime only

        return LocalCrawlerStarter(
            glue=glue,
            s3=app.client("s3"),
            events=app.client("events"),
            account=app.settings.account_id,
            region=app.settings.region,
        )
    return GlueCrawlerStarter(glue)


def catalog_services(app: App) -> CatalogServices:
    settings = app.settings
    return CatalogServices(
        settings=settings,
        glue=app.client("glue"),
        s3=app.client("s3"),
        dynamodb=app.client("dynamodb"),
        publisher=app.publisher,
        audit=app.audit,
        start_crawler=crawler_starter(app),
        send_later=sqs_send_later(app.client("sqs"), settings.catalog_queue_url),
    )
