"""Service settings: one frozen dataclass built from the environment at cold start.

This is the only module that reads environment variables. A missing variable fails at
start with its name (``ConfigurationError``), not later with a ``KeyError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields

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
    "mesh_dlq_arn": "MESH_DLQ_ARN",
}


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
    mesh_dlq_arn: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment).

        Raises ConfigurationError naming every missing or malformed variable at once.
        """
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        missing: list[str] = []
        malformed: list[str] = []
        for f in fields(cls):
            name = _ENV_NAMES[f.name]
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

    @property
    def hosts_central_bus(self) -> bool:
        """True when the central bus lives in this account (no cross-account role needed)."""
        if not self.central_bus_arn:
            return False
        parts = self.central_bus_arn.split(":")
        return len(parts) > 4 and (not self.account_id or parts[4] == self.account_id)

    def database(self, layer: str) -> str:
        """Glue database name of a lake layer (``formatted_stg``, ``formatted``...)."""
        return f"{self.glue_database_prefix}{layer}"
