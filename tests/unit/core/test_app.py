"""The per-container App: built from the environment the function runs with, once per
distinct deployment, and safe to ask for from several threads at once (the embedded runtime
runs a function's invocations concurrently in one process)."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

import lakegov.app
from lakegov.app import app_for, get_app, running_with
from lakegov.errors import ConfigurationError

BASE = {
    "LAKEGOV_ENVIRONMENT": "dev",
    "AWS_REGION": "eu-west-1",
    "RAW_BUCKET": "raw",
    "FORMATTED_BUCKET": "formatted",
    "CONFIG_BUCKET": "config",
    "SERVICE_BUS": "svc",
    "AUDIT_TABLE": "audit",
}


@pytest.fixture(autouse=True)
def cold_containers(monkeypatch):
    monkeypatch.setattr(lakegov.app, "_apps", {})


def test_a_missing_setting_fails_on_first_use_with_its_name():
    environment = {k: v for k, v in BASE.items() if k != "RAW_BUCKET"}
    with running_with(environment), pytest.raises(ConfigurationError, match="RAW_BUCKET"):
        get_app()


def test_each_thread_reads_the_environment_it_was_handed_and_the_process_is_untouched():
    before = dict(os.environ)
    seen: dict[str, str] = {}
    start = threading.Barrier(2)

    def run(bucket: str) -> None:
        with running_with({**BASE, "RAW_BUCKET": bucket}):
            start.wait()
            seen[bucket] = get_app().settings.raw_bucket

    threads = [threading.Thread(target=run, args=(b,)) for b in ("raw-a", "raw-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == {"raw-a": "raw-a", "raw-b": "raw-b"}
    assert dict(os.environ) == before


def test_concurrent_cold_starts_of_one_function_share_one_app():
    apps: list[lakegov.app.App] = []
    start = threading.Barrier(8)

    def run() -> None:
        start.wait()
        apps.append(app_for(BASE))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(apps) == 8 and len({id(app) for app in apps}) == 1


def test_a_variable_the_settings_do_not_read_does_not_make_a_new_app():
    # Lambda changes _X_AMZN_TRACE_ID on every invocation: still one App per container
    first = app_for({**BASE, "_X_AMZN_TRACE_ID": "Root=1"})
    assert app_for({**BASE, "_X_AMZN_TRACE_ID": "Root=2"}) is first
    assert app_for({**BASE, "AUDIT_TABLE": "other"}) is not first


def test_a_warm_function_builds_each_client_once_and_another_function_its_own():
    app = app_for(BASE)
    s3 = app.clients("s3")
    assert app_for(BASE).clients("s3") is s3  # the next invocation of the same function
    assert app_for({**BASE, "AUDIT_TABLE": "other"}).clients("s3") is not s3


class _Sent(Exception):
    """Raised instead of sending: carries the request's headers."""


def _user_agent(app: lakegov.app.App) -> str:
    sts = app.clients("sts")

    def capture(request: Any, **_: Any) -> None:
        raise _Sent(request.headers["User-Agent"])

    sts.meta.events.register("before-send", capture)
    with pytest.raises(_Sent) as sent:
        sts.get_caller_identity()
    header = sent.value.args[0]
    return header.decode() if isinstance(header, bytes) else str(header)


def test_on_the_embedded_runtime_clients_send_a_fixed_user_agent_with_the_same_retries():
    from lakegov.aws import LOCAL_USER_AGENT, RETRY_CONFIG

    deployed = app_for(BASE)
    local = app_for({**BASE, "LAKEGOV_LOCAL": "1", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    # in Lambda, botocore's own header (SDK, platform and feature ids), rebuilt per request
    assert "ua/2.1" in _user_agent(deployed) and "lakegov" in _user_agent(deployed)
    # on the embedded runtime, one fixed header (botocore need not rebuild it per request;
    # Powertools still appends its own part)
    assert _user_agent(local).startswith(LOCAL_USER_AGENT)
    assert "ua/2.1" not in _user_agent(local)
    for app in (deployed, local):
        assert app.clients("sts").meta.config.retries == RETRY_CONFIG.retries
