"""The embedded runtime's AWS endpoint, in a process of its own.

moto's server (with lakegov's Lake Formation additions) behind the local Athena, on
127.0.0.1. :class:`lakegov.local.runtime.LocalRuntime` starts it as a child process and
stops it (:class:`EndpointProcess`); the functions' handlers run in the runtime's process, so moto's emulation and
the handlers do not take turns on one interpreter lock.

    python -m lakegov.local.endpoint --port 4566 --account 123456789012 --region us-east-1

Step Functions calls on the template's state machines go to the runtime (``--states-url``:
:mod:`lakegov.local.states`). Besides AWS's APIs it answers one request of its own: ``POST /_lakegov/athena-output``
with the S3 prefix where the local Athena writes results when the workgroup names none
(the formatted bucket's, known once the stack is built); and ``GET /_lakegov/stats``
answers the requests it served, per AWS operation, with the CPU time they took
(:mod:`lakegov.local.request_stats`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from lakegov.aws import MOTO_KEYS, Clients, local_endpoint_config, session_with
from lakegov.errors import ConfigurationError
from lakegov.local.request_stats import read_stats

if TYPE_CHECKING:
    from lakegov.local.athena.service import LocalAthena

DEFAULT_ACCOUNT = "123456789012"
# the local deployer's keys, as a function's environment and as boto3's arguments name them
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": MOTO_KEYS[0], "AWS_SECRET_ACCESS_KEY": MOTO_KEYS[1]}
DEPLOYER_KEYS = {"aws_access_key_id": MOTO_KEYS[0], "aws_secret_access_key": MOTO_KEYS[1]}
CONFIGURE_PATH = "/_lakegov/athena-output"
# Many threads share these clients (pollers, functions): a connection each, not 10 in all.
# The read timeout is long on purpose: in a burst, moto's one-request-at-a-time queue can
# hold a request for over a minute, and a ReceiveMessage the client gives up on has still
# hidden its messages, for the queue's visibility timeout (90 minutes for ConvertQueue).
LOCAL_RETRIES = local_endpoint_config(
    Config(
        retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64, read_timeout=600
    )
)


def deployer_arn(account: str) -> str:
    """Who the default local credentials are (what moto says they are): the deploying
    identity, a data lake administrator (as the README asks of whoever deploys)."""
    return f"arn:aws:sts::{account}:user/moto"


def local_clients(
    endpoint_url: str, region: str, credentials: dict[str, str] | None = None
) -> Clients:
    """Clients on the local endpoint with the local deployer's keys (or ``credentials``:
    ``aws_access_key_id``... as boto3 names them)."""
    keys = credentials or DEPLOYER_KEYS
    session = session_with(
        region=region,
        access_key=keys["aws_access_key_id"],
        secret_key=keys["aws_secret_access_key"],
        session_token=keys.get("aws_session_token", ""),
    )
    return Clients(session, endpoint_url=endpoint_url, config=LOCAL_RETRIES)


def account_credentials(sts: Any, account: str) -> dict[str, str]:
    """Credentials moto maps to ``account``: a role there assumed with ``sts`` (a client
    on the local endpoint), as boto3 names them."""
    creds = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/lakegov-local",
        RoleSessionName="lakegov-local",
    )["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


class AthenaOnEndpoint:
    """The local Athena of this endpoint, created on the first Athena call (DuckDB on the
    first query), reading the catalog and objects through the endpoint itself.

    A principal of another account (a consumer domain's) reads its own account's catalog,
    where resource links stand for tables of this one: :meth:`catalog_of` gives that
    account's Glue and Lake Formation clients, on this endpoint with credentials moto maps
    to it."""

    def __init__(self, endpoint_url: str, account: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self.account = account
        self.region = region
        self.default_output = ""
        self.clients = local_clients(endpoint_url, region)
        self._athena: LocalAthena | None = None
        self._lock = threading.Lock()
        self._catalogs: dict[str, Clients] = {}
        self._catalogs_lock = threading.Lock()

    def __call__(self) -> LocalAthena:
        with self._lock:
            if self._athena is None:
                from lakegov.local.athena.engine import LocalAthenaEngine
                from lakegov.local.athena.service import LocalAthena

                engine = LocalAthenaEngine(
                    glue=self.clients("glue"),
                    s3=self.clients("s3"),
                    endpoint_url=self.endpoint_url,
                    region=self.region,
                    credentials=MOTO_KEYS,
                    access=self.access_policy,
                    unrestricted=self.unrestricted,
                    account=self.account,
                    catalog_of=self.catalog_of,
                    share_accepted=self.share_accepted,
                )
                self._athena = LocalAthena(
                    engine=engine,
                    clients=self.clients,
                    account=self.account,
                    region=self.region,
                    # a new account's primary workgroup has no output location: this one's
                    # results go under the formatted bucket, so no client has to say where
                    default_output=self.default_output,
                )
            return self._athena

    def configure(self, default_output: str) -> None:
        with self._lock:
            self.default_output = default_output
            if self._athena is not None:
                self._athena.default_output = default_output

    def access_policy(self) -> Any:
        """Lake Formation's evaluator over this endpoint's catalog: a new one per call (per
        query), which reads Lake Formation's state once."""
        from lakegov.governance.access import AccessPolicy

        return AccessPolicy(self.clients("lakeformation"), self.clients("glue"), reuse_reads=True)

    def _clients_of(self, account: str) -> Clients:
        """Administrator clients of ``account``."""
        if account == self.account:
            return self.clients
        with self._catalogs_lock:
            clients = self._catalogs.get(account)
            if clients is None:
                clients = local_clients(
                    self.endpoint_url,
                    self.region,
                    account_credentials(self.clients("sts"), account),
                )
                self._catalogs[account] = clients
            return clients

    def catalog_of(self, account: str) -> tuple[Any, Any]:
        """Administrator Glue and Lake Formation clients of ``account``'s catalog."""
        clients = self._clients_of(account)
        return clients("glue"), clients("lakeformation")

    def share_accepted(self, consumer: str, producer: str) -> bool:
        """Whether ``consumer`` accepted ``producer``'s RAM share (Lake Formation's
        cross-account grants): its invitation, as the consumer lists it, is ACCEPTED."""
        pages = self._clients_of(consumer)("ram").get_paginator("get_resource_share_invitations")
        return any(
            i.get("senderAccountId") == producer and i.get("status") == "ACCEPTED"
            for page in pages.paginate()
            for i in page.get("resourceShareInvitations") or []
        )

    def unrestricted(self, principal: str) -> bool:
        if principal == deployer_arn(self.account):
            return True
        return bool(self.access_policy().is_unrestricted(principal))

    def close(self) -> None:
        with self._lock:
            if self._athena is not None:
                self._athena.close()
                self._athena = None


class _Configure:
    """WSGI: the endpoint's own configuration request, the rest passed to ``app``."""

    def __init__(self, app: Any, athena: AthenaOnEndpoint) -> None:
        self.app, self.athena = app, athena

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != CONFIGURE_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.athena.configure(environ["wsgi.input"].read(length).decode() if length else "")
        start_response("204 No Content", [("Content-Length", "0")])
        return [b""]


class _OneAtATime:
    """WSGI: moto's backends are plain dicts and lists, not made for concurrent requests (a
    DynamoDB ``Query`` iterating a table while a ``PutItem`` adds to it fails with a server
    error): requests reach moto one at a time, but for SQS, whose long polls wait for
    messages: its queues are locked one by one instead (:mod:`lakegov.local.moto_sqs`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("AmazonSQS.") or "/sqs/aws4_request" in environ.get(
            "HTTP_AUTHORIZATION", ""
        ):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


def forward_states(app: Any, states_url: str) -> Any:
    """``app`` with the Step Functions calls on the template's state machines forwarded to
    the runtime at ``states_url``, which runs them (``""``: moto answers every call)."""
    if not states_url:
        return app
    from lakegov.local.states import StatesForwarder

    return StatesForwarder(app, states_url)


def serve(
    port: int, account: str, region: str, stop: threading.Event, states_url: str = ""
) -> None:
    """Serve on 127.0.0.1:``port`` until ``stop`` is set."""
    from lakegov.local import moto_events, moto_lakeformation, moto_ram, moto_speed, moto_sqs
    from lakegov.local.athena.server import AthenaMiddleware, LocalEndpoint
    from lakegov.local.request_stats import RequestStats

    moto_lakeformation.install()  # data cells filters, tags on untagged resources
    moto_ram.install()  # cross-account grants make RAM shares with invitations
    moto_events.install()  # PutEvents on another account's bus, as its policy allows
    moto_speed.install()  # moto's needless work per request, removed
    moto_sqs.install()  # concurrent SQS requests do not undo each other's changes
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
    athena = AthenaOnEndpoint(f"http://127.0.0.1:{port}", account, region)
    server = LocalEndpoint(
        "127.0.0.1",
        port,
        lambda app: RequestStats(
            forward_states(
                _Configure(
                    AthenaMiddleware(
                        _OneAtATime(app),
                        athena,
                        deployer_arn(account),
                        MOTO_KEYS[0],
                    ),
                    athena,
                ),
                states_url,
            )
        ),
    )
    server.start()
    try:
        stop.wait()
    finally:
        athena.close()
        server.stop()


class EndpointProcess:
    """This module's :func:`main`, run by the embedded runtime as a child process on
    ``127.0.0.1:port``: started, waited for until it serves with every backend reset (a
    port reused by another endpoint would keep its state), and stopped."""

    def __init__(self, port: int, account: str, region: str, *, states_url: str = "") -> None:
        self.port = port
        self.account = account
        self.region = region
        self.states_url = states_url
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 60.0) -> EndpointProcess:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        states = ["--states-url", self.states_url] if self.states_url else []
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lakegov.local.endpoint",
                "--port",
                str(self.port),
                "--account",
                self.account,
                "--region",
                self.region,
                *states,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            # not in the terminal's process group: Ctrl-C stops the runtime, which stops its
            # functions and then the endpoint (the endpoint exits if its parent dies)
            start_new_session=True,
        )
        self._wait_until_serving(timeout)
        with contextlib.suppress(OSError):
            self.post("/moto-api/reset")
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ConfigurationError(
                    f"the local endpoint exited with {self._process.returncode} "
                    f"(port {self.port} in use?)"
                )
            if self._answers():
                return
            time.sleep(0.05)
        raise ConfigurationError(f"moto server did not start on port {self.port}")

    def _answers(self) -> bool:
        """Whether this endpoint answers on the port (its own figures' path): another
        listener that took the port meanwhile answers otherwise, or not at all."""
        try:
            return isinstance(read_stats(f"http://127.0.0.1:{self.port}", timeout=2), dict)
        except (OSError, ValueError):
            return False

    def post(self, path: str, body: bytes = b"") -> None:
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._process = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", default=DEFAULT_ACCOUNT)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--states-url", default="", help="the runtime's StatesListener")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    parent = os.getppid()

    def orphaned() -> None:  # the runtime that started this endpoint is gone: so is it
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, name="lakegov-parent-watch", daemon=True).start()
    serve(args.port, args.account, args.region, stop, args.states_url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
