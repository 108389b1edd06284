"""Per-container wiring: settings, clients, publisher and audit store, built once.

Handlers call :func:`get_app` and pass what the domain function needs. Settings and
credentials come from one mapping: in Lambda the process environment; on the embedded
runtime, which runs every function in one process (several at once), the function's own
environment, handed over for the duration of an invocation with :func:`running_with`, so
the process environment is never patched. The cache is keyed by what the settings and
clients read, so each function gets its own App, as each Lambda function would.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lakegov.audit import AuditStore
from lakegov.aws import CREDENTIAL_VARIABLES, RETRY_CONFIG, Clients, local_endpoint_config
from lakegov.errors import ConfigurationError
from lakegov.events import EventPublisher
from lakegov.settings import SETTINGS_VARIABLES, Settings

if TYPE_CHECKING:
    from lakegov.ingest.athena import AthenaConverter
    from lakegov.ingest.service import Converter
    from lakegov.lineage.records import LakeRecords


@dataclass
class App:
    """One deployment's wiring: what the handlers hand to the domain, built on first use.

    The domain objects are imported where they are built, so a function loads only what it
    uses (the Athena state-change function never loads DuckDB).
    """

    settings: Settings
    clients: Clients = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, environment: Mapping[str, str] | None = None) -> App:
        """The App of a deployment: its settings, and clients for its region and endpoint
        (with the credentials ``environment`` carries, when it carries them; on the embedded
        runtime, configured for its local endpoint)."""
        return cls(
            settings=settings,
            clients=Clients.from_environment(
                environment or {},
                region=settings.region,
                endpoint_url=settings.endpoint_url,
                config=local_endpoint_config(RETRY_CONFIG) if settings.local_mode else RETRY_CONFIG,
            ),
        )

    @cached_property
    def publisher(self) -> EventPublisher:
        return EventPublisher(self.clients("events"), (self.settings.service_bus,))

    @cached_property
    def audit(self) -> AuditStore:
        return AuditStore(
            self.settings.audit_table,
            self.clients("dynamodb"),
            retention_days=self.settings.audit_retention_days,
        )

    @cached_property
    def lake_records(self) -> LakeRecords:
        """The service's own tables (``audit_control``, ``test_results``, ``lineage_events``),
        one per container: the tables and day partitions it registered are remembered across
        invocations, so a warm function makes no Glue call for a day it already registered."""
        from lakegov.lineage.records import LakeRecords

        return LakeRecords(
            self.clients("s3"),
            self.clients("glue"),
            self.settings.formatted_bucket,
            self.settings.database("formatted"),
        )

    @cached_property
    def athena_converter(self) -> AthenaConverter:
        """Large files' conversions on Athena (started by the converter, advanced by events)."""
        from lakegov.ingest.athena import AthenaConverter

        return AthenaConverter(
            athena=self.clients("athena"),
            s3=self.clients("s3"),
            audit=self.audit,
            publisher=self.publisher,
            settings=self.settings,
        )

    @cached_property
    def converter(self) -> Converter:
        """Landed files -> Parquet (the convert function's domain object)."""
        from lakegov.ingest.service import Converter

        return Converter(
            s3=self.clients("s3"),
            publisher=self.publisher,
            audit=self.audit,
            settings=self.settings,
            athena=self.athena_converter,
        )

    @cached_property
    def central_publisher(self) -> EventPublisher:
        """Publishes on the mesh's central bus; a deployment without one cannot forward."""
        if not self.settings.central_bus_arn:
            raise ConfigurationError("CENTRAL_BUS_ARN is not set: nowhere to forward to")
        return EventPublisher(self.clients("events"), (self.settings.central_bus_arn,))

    def client(self, service: str) -> Any:
        return self.clients(service)


_apps: dict[tuple[tuple[str, str], ...], App] = {}
_lock = threading.Lock()
_KEY_VARIABLES = (*SETTINGS_VARIABLES, *CREDENTIAL_VARIABLES)
# The environment of the function this thread runs for the embedded runtime (None: Lambda's
# own process environment).
_environment: ContextVar[Mapping[str, str] | None] = ContextVar("lakegov_environment", default=None)


@contextlib.contextmanager
def running_with(environment: Mapping[str, str]) -> Iterator[None]:
    """Within this block, on this thread, :func:`get_app` reads ``environment``."""
    token = _environment.set(environment)
    try:
        yield
    finally:
        _environment.reset(token)


def environment() -> Mapping[str, str]:
    """The environment of the function being run: the one the embedded runtime handed
    over, else the process's (Lambda's, set before the cold start)."""
    handed = _environment.get()
    return os.environ if handed is None else handed


def get_app() -> App:
    """The App of the function being run (built and validated on first use)."""
    return app_for(environment())


def app_for(environment: Mapping[str, str]) -> App:
    """The App for ``environment``: its settings, and clients with its region, endpoint and
    (when it carries them) credentials."""
    # Only what the settings and clients read: Lambda changes _X_AMZN_TRACE_ID on every
    # invocation, and keying on the whole environment would build (and keep) a new App each time.
    snapshot = tuple((name, environment.get(name, "")) for name in _KEY_VARIABLES)
    with _lock:
        app = _apps.get(snapshot)
        if app is None:
            app = App.from_settings(Settings.from_env(environment), environment)
            _apps[snapshot] = app
        return app
