"""Service settings: one frozen dataclass built from the environment at cold start.

This is the only module that reads environment variables. A missing variable fails at
start with its name (``ConfigurationError``), not later with a ``KeyError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import TypeVar

from lakegov.errors import ConfigurationError

# Environment variable -> Settings field. Required ones have no default in the dataclass.
_ENV_NAMES: dict[str, str] = {
    "environment": "LAKEGOV_ENVIRONMENT",
    "region": "AWS_REGION",
    "raw_bucket": "RAW_BUCKET",
    "formatted_bucket": "FORMATTED_BUCKET",
    "config_bucket": "CONFIG_BUCKET",
    "service_bus": "SERVICE_BUS",
    "audit_table": "AUDIT_TABLE",
    "central_bus_arn": "CENTRAL_BUS_ARN",
    "account_id": "LAKEGOV_ACCOUNT_ID",
    "endpoint_url": "AWS_ENDPOINT_URL",
    "glue_database_prefix": "GLUE_DATABASE_PREFIX",
    "crawler_role_arn": "CRAWLER_ROLE_ARN",
    "max_file_bytes": "MAX_FILE_BYTES",
    "athena_threshold_bytes": "ATHENA_THRESHOLD_BYTES",
    "athena_workgroup": "ATHENA_WORKGROUP",
    "alarm_topic_arn": "ALARM_TOPIC_ARN",
    "central_bus_role_arn": "CENTRAL_BUS_ROLE_ARN",
    "governance_guardrails": "GOVERNANCE_GUARDRAILS",
    "drift_reconcile": "DRIFT_RECONCILE",
    "dbt_project_key": "DBT_PROJECT_KEY",
    "dbt_codebuild_project": "DBT_CODEBUILD_PROJECT",
    "products_default_runner": "PRODUCTS_DEFAULT_RUNNER",
    "local_mode": "LAKEGOV_LOCAL",
    "local_runs_dir": "LAKEGOV_LOCAL_RUNS_DIR",
    "default_catalog_mode": "DEFAULT_CATALOG_MODE",
    "catalog_queue_url": "CATALOG_QUEUE_URL",
    "crawl_coalesce_seconds": "CRAWL_COALESCE_SECONDS",
    "partition_projection_threshold": "PARTITION_PROJECTION_THRESHOLD",
    "mesh_dlq_arn": "MESH_DLQ_ARN",
    "audit_retention_days": "AUDIT_RETENTION_DAYS",
    "datazone_domain_id": "DATAZONE_DOMAIN_ID",
    "stack_databases": "STACK_DATABASES",
    "stack_principals": "STACK_PRINCIPALS",
}


_S = TypeVar("_S", "Settings", "ConsumerSettings")

_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}

# Every variable the settings read (the App cache is keyed on these only).
SETTINGS_VARIABLES: tuple[str, ...] = (*sorted(set(_ENV_NAMES.values())), "AWS_DEFAULT_REGION")


def _from_env(cls: type[_S], names: Mapping[str, str], env: Mapping[str, str] | None) -> _S:
    """``cls`` (a settings dataclass) from ``env`` (default: the process environment), each
    field read from its variable in ``names`` (the region falling back to
    ``AWS_DEFAULT_REGION``). Raises ConfigurationError naming every missing or malformed
    variable at once."""
    source = os.environ if env is None else env
    values: dict[str, object] = {}
    missing: list[str] = []
    malformed: list[str] = []
    for f in fields(cls):
        name = names[f.name]
        raw = source.get(name, "")
        if f.name == "region" and not raw:
            raw = source.get("AWS_DEFAULT_REGION", "")
        if not raw:
            if f.default is MISSING:  # no default: required
                missing.append(name)
            continue
        if f.type == "int":
            try:
                values[f.name] = int(raw)
            except ValueError:
                malformed.append(f"{name}={raw!r} (expected an integer)")
        elif f.type == "bool":
            flag = _BOOLEANS.get(raw.strip().lower())
            if flag is None:
                malformed.append(f"{name}={raw!r} (expected true or false)")
            else:
                values[f.name] = flag
        elif f.type == "tuple[str, ...]":
            values[f.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
        else:
            values[f.name] = raw
    if missing or malformed:
        problems = []
        if missing:
            problems.append("missing environment variables: " + ", ".join(missing))
        if malformed:
            problems.append("malformed: " + "; ".join(malformed))
        raise ConfigurationError("; ".join(problems))
    return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Settings:
    """What every function needs to know about its deployment."""

    environment: str
    region: str
    raw_bucket: str
    formatted_bucket: str
    config_bucket: str
    service_bus: str
    audit_table: str
    central_bus_arn: str = ""
    account_id: str = ""
    endpoint_url: str = ""
    glue_database_prefix: str = ""
    crawler_role_arn: str = ""
    max_file_bytes: int = 5 * 1024**3
    athena_threshold_bytes: int = 2 * 1024**3
    athena_workgroup: str = "primary"
    alarm_topic_arn: str = ""
    central_bus_role_arn: str = ""
    governance_guardrails: str = ""  # JSON object, see lakegov.governance.Guardrails
    drift_reconcile: bool = False  # DRIFT_RECONCILE: true/false, 1/0, yes/no
    dbt_project_key: str = "dbt/project.zip"
    dbt_codebuild_project: str = ""
    products_default_runner: str = ""  # empty: "local" on the embedded runtime, else codebuild
    local_mode: bool = False  # LAKEGOV_LOCAL=1 on the embedded runtime
    local_runs_dir: str = ""
    # Catalog: mode for datasets that do not choose one, the queue the catalog function
    # re-queues delayed crawler starts on, the burst window that coalesces crawler starts,
    # and the partition count above which date-partitioned tables switch to projection.
    default_catalog_mode: str = "direct"
    catalog_queue_url: str = ""
    crawl_coalesce_seconds: int = 60
    partition_projection_threshold: int = 10000
    mesh_dlq_arn: str = ""
    # Days an audit item is kept after its last write (the table's TTL; 0 = forever).
    audit_retention_days: int = 400
    datazone_domain_id: str = ""  # lineage is posted to this Amazon DataZone domain when set
    # The stack's own Glue databases (governed whole by the drift check) and the roles its
    # resources grant to (never revoked by it), comma-separated.
    stack_databases: tuple[str, ...] = ()  # STACK_DATABASES, comma-separated
    stack_principals: tuple[str, ...] = ()  # STACK_PRINCIPALS, comma-separated

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment).

        Raises ConfigurationError naming every missing or malformed variable at once.
        """
        return _from_env(cls, _ENV_NAMES, env)

    def database(self, layer: str) -> str:
        """Glue database name of a lake layer (``formatted_stg``, ``formatted``...)."""
        return f"{self.glue_database_prefix}{layer}"


_CONSUMER_ENV: dict[str, str] = {
    "domain": "DOMAIN_NAME",
    "account_id": "DOMAIN_ACCOUNT_ID",
    "region": "AWS_REGION",
    "central_bus_arn": "CENTRAL_BUS_ARN",
    "link_prefix": "LINK_PREFIX",
    "endpoint_url": "AWS_ENDPOINT_URL",
}


@dataclass(frozen=True)
class ConsumerSettings:
    """A consumer domain's share function (``templates/domain.yaml``), not the service."""

    domain: str
    account_id: str
    region: str
    central_bus_arn: str
    link_prefix: str = "shared_"
    endpoint_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsumerSettings:
        return _from_env(cls, _CONSUMER_ENV, env)
