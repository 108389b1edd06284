"""Building a :class:`ProductsContext` (and its runners) from the deployment's settings.

Used by the products' handlers and by the embedded runtime; nothing here reads the
environment: settings and clients come from :class:`lakegov.app.App`.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lakegov.aws import Clients
from lakegov.errors import ConfigurationError
from lakegov.products.context import ProductsContext
from lakegov.products.model import RUNNERS
from lakegov.products.store import ProductStore
from lakegov.runners.base import Runner
from lakegov.runners.codebuild import CodeBuildRunner
from lakegov.runners.dbt_duckdb import LocalRunner
from lakegov.runners.ecs import EcsRunner
from lakegov.runners.mwaa import MwaaRunner
from lakegov.runners.stepfunctions import StepFunctionsRunner
from lakegov.settings import Settings

# One local runner per deployment and process: its threads outlive a handler invocation.
_local_runners: dict[tuple[str, str, str], LocalRunner] = {}
_local_lock = threading.Lock()


def default_runner(settings: Settings) -> str:
    configured = settings.products_default_runner
    if configured:
        if configured not in RUNNERS:
            raise ConfigurationError(f"PRODUCTS_DEFAULT_RUNNER={configured!r} is not a runner")
        return configured
    return "local" if settings.local_mode else "codebuild"


def local_dbt_env(settings: Settings, credentials: Any = None) -> dict[str, str]:
    """What the dbt project's ``local`` target reads (dbt/profiles.yml)."""
    endpoint = urlparse(settings.endpoint_url) if settings.endpoint_url else None
    env = {
        "LAKEGOV_FORMATTED_BUCKET": settings.formatted_bucket,
        # the models' schemas are the lake's Glue databases, as on Athena
        "LAKEGOV_FORMATTED_DB": settings.database("formatted"),
        "LAKEGOV_FORMATTED_EXCEPTION_DB": settings.database("formatted_exception"),
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
    }
    if endpoint is not None and endpoint.netloc:
        env["LAKEGOV_S3_ENDPOINT"] = endpoint.netloc  # DuckDB takes host:port, no scheme
    frozen = credentials.get_frozen_credentials() if credentials is not None else None
    if frozen is not None:
        env["AWS_ACCESS_KEY_ID"] = frozen.access_key
        env["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
        if frozen.token:
            env["AWS_SESSION_TOKEN"] = frozen.token
    return env


def local_runner(settings: Settings, clients: Clients) -> LocalRunner:
    key = (settings.config_bucket, settings.endpoint_url, settings.local_runs_dir)
    with _local_lock:
        runner = _local_runners.get(key)
        if runner is None:
            work_dir = Path(settings.local_runs_dir or Path(tempfile.gettempdir()) / "lakegov-runs")
            runner = LocalRunner(
                s3=clients("s3"),
                events=clients("events"),
                glue=clients("glue"),
                config_bucket=settings.config_bucket,
                # dbt's own S3 reads use the keys the function's clients use
                dbt_env=local_dbt_env(settings, clients.credentials()),
                work_dir=work_dir,
                project_key=settings.dbt_project_key,
            )
            _local_runners[key] = runner
        return runner


def runner_factory(settings: Settings, client: Clients) -> Callable[[str], Runner]:
    def runner(name: str) -> Runner:
        if name == "codebuild":
            return CodeBuildRunner(client("codebuild"), settings.dbt_codebuild_project)
        if name == "stepfunctions":
            return StepFunctionsRunner(client("stepfunctions"))
        if name == "mwaa":
            return MwaaRunner(client("mwaa"))
        if name == "ecs":
            return EcsRunner(client("ecs"))
        if name == "local":
            return local_runner(settings, client)
        raise ConfigurationError(f"unknown runner {name!r}")

    return runner


def products_context(app: Any) -> ProductsContext:
    """The context for one warm container (``app`` is :class:`lakegov.app.App`)."""
    settings = app.settings
    return ProductsContext(
        store=ProductStore(settings.audit_table, app.client("dynamodb")),
        audit=app.audit,
        publisher=app.publisher,
        runners=runner_factory(settings, app.clients),
        s3=app.client("s3"),
        config_bucket=settings.config_bucket,
        glue_prefix=settings.glue_database_prefix,
        default_runner=default_runner(settings),
        sns=app.client("sns") if settings.alarm_topic_arn else None,
        alarm_topic_arn=settings.alarm_topic_arn,
        dbt_project_key=settings.dbt_project_key,
        account_id=settings.account_id,
        environment=settings.environment,
        records=app.lake_records,
    )
