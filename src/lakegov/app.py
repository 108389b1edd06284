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
from typing import Any

from lakegov.audit import AuditStore
from lakegov.aws import Clients
from lakegov.events import EventPublisher
from lakegov.settings import SETTINGS_VARIABLES, Settings


@dataclass
class App:
    settings: Settings
    clients: Clients = field(repr=False)

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
            settings = Settings.from_env()
            app = App(
                settings=settings,
                clients=Clients(region=settings.region, endpoint_url=settings.endpoint_url),
            )
            _apps[snapshot] = app
        return app
