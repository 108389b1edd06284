"""Per-container wiring: settings, clients, publisher and audit store, built once.

Handlers call :func:`get_app` and pass what the domain function needs. The cache is keyed
by the environment snapshot, so the embedded runtime (which runs every function in one
process, each with its own environment) gets one App per function, as Lambda would.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lakegov.audit import AuditStore
from lakegov.aws import Clients
from lakegov.errors import ConfigurationError
from lakegov.events import EventPublisher
from lakegov.settings import SETTINGS_VARIABLES, Settings

if TYPE_CHECKING:
    from lakegov.ingest.athena import AthenaConverter
    from lakegov.ingest.service import Converter


@dataclass
class App:
    """One deployment's wiring: what the handlers hand to the domain, built on first use.

    The domain objects are imported where they are built, so a function loads only what it
    uses (the Athena state-change function never loads DuckDB).
    """

    settings: Settings
    clients: Clients = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> App:
        """The App of a deployment: its settings, and clients for its region and endpoint."""
        return cls(
            settings=settings,
            clients=Clients(region=settings.region, endpoint_url=settings.endpoint_url),
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


def get_app() -> App:
    """The App for the current environment (built and validated on first use)."""
    # Only what the settings read: Lambda changes _X_AMZN_TRACE_ID on every invocation, and
    # keying on the whole environment would build (and keep) a new App each time.
    snapshot = tuple((name, os.environ.get(name, "")) for name in SETTINGS_VARIABLES)
    with _lock:
        app = _apps.get(snapshot)
        if app is None:
            app = App.from_settings(Settings.from_env())
            _apps[snapshot] = app
        return app
