"""What the local endpoint spends its CPU on: requests counted per AWS operation.

:class:`RequestStats` is a WSGI middleware in front of the endpoint's application. For each
request it adds one to its operation's count and the CPU time the serving thread spent
answering it (``time.thread_time``: waiting, for moto's lock or in an SQS long poll, costs
nothing), the response's body included (built before the request is counted, so a client
that has its answer finds its request counted). ``GET /_lakegov/stats`` answers the figures so far
as JSON (:func:`read_stats` on the client side); the benchmarks read them to say which
operations the emulation's time goes to. Two clock readings and a dictionary update per
request: always on.

An operation is named as AWS's protocols name it:

- JSON protocols (DynamoDB, SQS, EventBridge, Glue, Athena...): the ``X-Amz-Target``
  action, ``UpdateItem``;
- query protocol (STS, IAM, SNS...): the ``Action`` parameter, from the query string or a
  form-encoded body;
- S3 and the other REST protocols: the method, what the path names (``bucket``,
  ``object``: path-style addressing, as the local clients use) and the sorted names of
  the query parameters, ``GET bucket ?list-type&prefix``.

The service is the one the request is signed for (its credential scope).
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, parse_qsl

STATS_PATH = "/_lakegov/stats"
_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_QUERY_SCOPE = re.compile(
    r"X-Amz-Credential=[^&]*?(?:%2F|/)\d{8}(?:%2F|/)[^&%/]+(?:%2F|/)([^&%/]+)"
)
_FORM = "application/x-www-form-urlencoded"


def service_of(environ: dict[str, Any]) -> str:
    """The service a request is signed for (``s3``, ``dynamodb``...), ``""`` if unsigned."""
    match = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        match = _QUERY_SCOPE.search(environ.get("QUERY_STRING", ""))
    return match.group(1) if match else ""


def operation_of(environ: dict[str, Any], service: str) -> str:
    """The operation a request asks for (see the module's docstring). Reads a form-encoded
    body to find its ``Action``, and puts back an equal stream for the application."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2]
    method = environ.get("REQUEST_METHOD", "")
    query = environ.get("QUERY_STRING", "")
    if query:
        action = parse_qs(query).get("Action")
        if action:
            return action[0]
    length = environ.get("CONTENT_LENGTH") or ""
    if method == "POST" and environ.get("CONTENT_TYPE", "").startswith(_FORM) and length.isdigit():
        body = environ["wsgi.input"].read(int(length))
        environ["wsgi.input"] = io.BytesIO(body)
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return action[0]
    path = environ.get("PATH_INFO", "").strip("/")
    if service == "s3":
        named = "object" if "/" in path else ("bucket" if path else "service")
    else:
        named = path.split("/", 1)[0] if path else ""
    keys = sorted({k for k, _ in parse_qsl(query, keep_blank_values=True)})
    name = f"{method} {named}".rstrip()
    return f"{name} ?{'&'.join(keys)}" if keys else name


class RequestStats:
    """WSGI: counts each request's operation and CPU time; answers them on ``STATS_PATH``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._started = time.time()
        # (service, operation) -> [count, CPU seconds, wall seconds]
        self._figures: dict[tuple[str, str], list[float]] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATS_PATH and environ.get("REQUEST_METHOD") == "GET":
            return self._answer(start_response)
        cpu, wall = time.thread_time(), time.perf_counter()
        service = service_of(environ)
        operation = operation_of(environ, service)
        try:
            body = self.app(environ, start_response)
            try:  # the body is built here (moto holds it in memory anyway), and counted
                return list(body)
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        finally:
            self._add(service or "-", operation, cpu, wall)

    def _add(self, service: str, operation: str, cpu: float, wall: float) -> None:
        spent_cpu = time.thread_time() - cpu
        spent_wall = time.perf_counter() - wall
        with self._lock:
            figures = self._figures.setdefault((service, operation), [0, 0.0, 0.0])
            figures[0] += 1
            figures[1] += spent_cpu
            figures[2] += spent_wall

    def snapshot(self) -> dict[str, Any]:
        """The figures so far: ``operations`` (service, operation, count, cpu_seconds,
        wall_seconds), highest CPU first."""
        with self._lock:
            rows: list[dict[str, Any]] = [
                {
                    "service": service,
                    "operation": operation,
                    "count": int(count),
                    "cpu_seconds": round(cpu, 6),
                    "wall_seconds": round(wall, 6),
                }
                for (service, operation), (count, cpu, wall) in self._figures.items()
            ]
        rows.sort(key=lambda r: (-r["cpu_seconds"], r["service"], r["operation"]))
        return {"since": self._started, "operations": rows}

    def _answer(self, start_response: Any) -> list[bytes]:
        data = json.dumps(self.snapshot()).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]


def read_stats(endpoint_url: str, timeout: float = 10.0) -> dict[str, Any]:
    """The figures of the endpoint at ``endpoint_url`` (``http://127.0.0.1:<port>``)."""
    request = urllib.request.Request(f"{endpoint_url}{STATS_PATH}", method="GET")  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def difference(after: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    """The operations counted between two snapshots, highest CPU first."""
    earlier = {(r["service"], r["operation"]): r for r in before.get("operations", [])}
    rows = []
    for row in after.get("operations", []):
        was = earlier.get((row["service"], row["operation"]), {})
        count = row["count"] - was.get("count", 0)
        if count <= 0:
            continue
        rows.append(
            {
                "service": row["service"],
                "operation": row["operation"],
                "count": count,
                "cpu_seconds": row["cpu_seconds"] - was.get("cpu_seconds", 0.0),
                "wall_seconds": row["wall_seconds"] - was.get("wall_seconds", 0.0),
            }
        )
    rows.sort(key=lambda r: -r["cpu_seconds"])
    return rows
