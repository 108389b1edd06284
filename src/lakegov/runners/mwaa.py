"""Amazon MWAA runner: trigger a DAG run with the selection as its conf.

Two ways to reach the Airflow REST API (``runner.transport``):

* ``invoke_rest_api`` (default): MWAA's ``InvokeRestApi`` forwards the call, so the Lambda
  needs no network path to a private web server, only ``airflow:InvokeRestApi``.
* ``web_token``: ``CreateWebLoginToken``, a login at ``https://<web server>/aws_mwaa/login``
  for a session cookie, then ``POST /api/v1/dags/{dag}/dagRuns`` over HTTPS. The HTTP call
  is injected (``http``), so tests stub it.

The DAG run id is derived from the run id (a repeated start finds the run it started:
409 is success). Airflow emits no state-change event: the products sweeper polls
``describe`` (``GET .../dagRuns/{id}``). The DAG must write dbt's artifacts to the conf's
``artifacts_uri``.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.runners.base import FAILED, RUNNING, SUCCEEDED, RunRequest, RunStatus, job_input

NAME = "mwaa"
STATE_MAP = {"queued": RUNNING, "running": RUNNING, "success": SUCCEEDED, "failed": FAILED}

# (method, url, headers, body) -> (status, response headers, body)
HttpCall = Callable[
    [str, str, Mapping[str, str], bytes | None], tuple[int, Mapping[str, str], bytes]
]


def map_state(state: str) -> RunStatus:
    mapped = STATE_MAP.get(state.lower(), FAILED)
    return RunStatus(mapped, f"DAG run {state}" if mapped == FAILED else None, state)


def external_id(environment: str, dag_id: str, dag_run_id: str) -> str:
    return f"{environment}/{dag_id}/{dag_run_id}"


def split_external_id(value: str) -> tuple[str, str, str]:
    environment, dag_id, dag_run_id = value.split("/", 2)
    return environment, dag_id, dag_run_id


def urllib_http(
    method: str, url: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[int, Mapping[str, str], bytes]:
    """The default HTTP call (HTTPS to the MWAA web server)."""
    if not url.startswith("https://"):
        raise PermanentError(f"refusing a non-HTTPS MWAA URL: {url}")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers or {}), exc.read()
    except OSError as exc:
        raise RetryableError(f"MWAA web server unreachable: {exc}") from exc


def _check(status: int, body: bytes, what: str) -> None:
    if status < 400:
        return
    text = body.decode("utf-8", "replace")[:500]
    if status == 429 or status >= 500:
        raise RetryableError(f"{what}: HTTP {status} {text}")
    raise PermanentError(f"{what}: HTTP {status} {text}")


@dataclass
class MwaaRunner:
    mwaa: Any
    http: HttpCall = urllib_http
    name: str = NAME

    # -- the two transports ------------------------------------------------------------
    def _invoke(
        self, environment: str, method: str, path: str, body: Mapping[str, Any] | None
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"Name": environment, "Path": path, "Method": method}
        if body is not None:
            kwargs["Body"] = dict(body)
        try:
            response = self.mwaa.invoke_rest_api(**kwargs)
        except ClientError as exc:
            code = error_code(exc)
            raw: Any = exc.response
            status = int(raw.get("RestApiStatusCode") or 0)
            if code == "RestApiClientException" and status == 409:
                return 409, exc.response.get("RestApiResponse")
            if code == "RestApiServerException" or is_transient(exc):
                raise RetryableError(f"MWAA {method} {path}: {code}") from exc
            raise PermanentError(f"MWAA {method} {path}: {code}") from exc
        return int(response.get("RestApiStatusCode", 200)), response.get("RestApiResponse")

    def _web(
        self, environment: str, method: str, path: str, body: Mapping[str, Any] | None
    ) -> tuple[int, Any]:
        try:
            token = self.mwaa.create_web_login_token(Name=environment)
        except ClientError as exc:
            if is_transient(exc):
                raise RetryableError(f"CreateWebLoginToken: {error_code(exc)}") from exc
            raise PermanentError(f"CreateWebLoginToken: {error_code(exc)}") from exc
        host = str(token["WebServerHostname"])
        status, headers, payload = self.http(
            "POST",
            f"https://{host}/aws_mwaa/login",
            {"Content-Type": "application/x-www-form-urlencoded"},
            urllib.parse.urlencode({"token": token["WebToken"]}).encode(),
        )
        _check(status if status != 302 else 200, payload, "MWAA web login")
        cookie = _session_cookie(headers)
        if not cookie:
            raise PermanentError("MWAA web login returned no session cookie")
        status, _, payload = self.http(
            method,
            f"https://{host}/api/v1{path}",
            {"Content-Type": "application/json", "Cookie": f"session={cookie}"},
            json.dumps(body).encode() if body is not None else None,
        )
        if status == 409:
            return 409, None
        _check(status, payload, f"Airflow {method} {path}")
        return status, json.loads(payload or b"{}")

    def _call(
        self, settings: Mapping[str, Any], method: str, path: str, body: Mapping[str, Any] | None
    ) -> tuple[int, Any]:
        environment = str(settings["environment_name"])
        if settings.get("transport", "invoke_rest_api") == "web_token":
            return self._web(environment, method, path, body)
        return self._invoke(environment, method, path, body)

    # -- the runner --------------------------------------------------------------------
    def start(self, request: RunRequest) -> str:
        settings = request.settings
        dag_id = str(settings["dag_id"])
        dag_run_id = f"lakegov__{request.token}"
        conf = {**dict(settings.get("conf") or {}), **job_input(request)}
        status, _ = self._call(
            settings, "POST", f"/dags/{dag_id}/dagRuns", {"dag_run_id": dag_run_id, "conf": conf}
        )
        del status  # 200 (created) or 409 (this run already exists): both mean started
        return external_id(str(settings["environment_name"]), dag_id, dag_run_id)

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        environment, dag_id, dag_run_id = split_external_id(external_id)
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(dag_run_id, safe='')}"
        _, body = self._call({**settings, "environment_name": environment}, "GET", path, None)
        return map_state(str((body or {}).get("state", "")))


def _session_cookie(headers: Mapping[str, str]) -> str | None:
    for name, value in headers.items():
        if name.lower() != "set-cookie":
            continue
        for part in str(value).split(";"):
            key, _, cookie = part.strip().partition("=")
            if key == "session" and cookie:
                return cookie
    return None
