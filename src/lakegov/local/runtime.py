"""The embedded runtime: moto's server in-process, the template's resources on it, and a
dispatcher that calls each function's handler with real Lambda-shaped events.

Differences from AWS, on purpose: a failed SQS message comes back after a short backoff
(1, 2, 4... seconds, at most 30) instead of the queue's visibility timeout, so local retries
and dead-lettering take seconds, not hours; functions run one at a time in this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from lakegov.errors import ConfigurationError
from lakegov.local.stack import FunctionSpec, LocalStack, StackBuilder, Subscription
from lakegov.local.states import LocalStateMachines
from lakegov.observability import logger, metrics

if TYPE_CHECKING:
    from lakegov.local.athena.service import LocalAthena

DEFAULT_ACCOUNT = "123456789012"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_ENV_LOCK = threading.RLock()


def find_template(start: Path | None = None) -> Path:
    """``template.yaml`` in the current directory or above, else next to this checkout."""
    candidates = [start or Path.cwd(), *((start or Path.cwd()).parents)]
    candidates.append(Path(__file__).resolve().parents[3])
    for folder in candidates:
        path = folder / "template.yaml"
        if path.is_file():
            return path
    raise ConfigurationError(
        "template.yaml not found (run from the lakegov checkout or pass --template)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Run with ``values`` added to the process environment (one function at a time)."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


@dataclass
class LambdaContext:
    """What a handler reads from its context object."""

    function_name: str
    timeout_s: int
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    function: str
    source: str
    ok: bool
    error: str = ""
    failed_items: int = 0
    duration_ms: float = 0.0
    result: Any = None


class LocalRuntime:
    """The whole service on one machine. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        template_path: Path | None = None,
        *,
        port: int = 0,
        region: str = "us-east-1",
        account: str = DEFAULT_ACCOUNT,
        stack_name: str = "lakegov-local",
        parameters: Mapping[str, str] | None = None,
        schedules: bool = False,
        poll_interval: float = 0.05,
    ) -> None:
        self.template_path = (template_path or find_template()).resolve()
        self.port = port or free_port()
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.parameters = dict(parameters or {})
        self.schedules = schedules
        self.poll_interval = poll_interval
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.stack: LocalStack | None = None
        self.events: list[dict[str, Any]] = []
        self.invocations: list[Invocation] = []
        self.listeners: list[Callable[[str, Any], None]] = []
        self._server: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._busy = threading.Event()
        self._cond = threading.Condition()
        self._observer_queues: dict[str, str] = {}
        self._last_schedule: dict[int, float] = {}
        self._account_credentials: dict[str, dict[str, str]] = {}
        self._work_dir: tempfile.TemporaryDirectory[str] | None = None
        self._athena: LocalAthena | None = None
        self._athena_lock = threading.Lock()
        self.state_machines = LocalStateMachines(self)

    @property
    def work_dir(self) -> Path:
        """Scratch space of this runtime (local dbt runs, their DuckDB state); removed on stop."""
        if self._work_dir is None:
            self._work_dir = tempfile.TemporaryDirectory(prefix="lakegov-local-")
        return Path(self._work_dir.name)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str, account: str | None = None) -> Any:
        """A boto3 client on the local endpoint, in this stack's account or in ``account``."""
        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
            **self.credentials(account),
        )

    def credentials(self, account: str | None = None) -> dict[str, str]:
        """Credentials moto maps to ``account`` (an assumed role there), default: this stack's."""
        if not account or account == self.account:
            return {
                "aws_access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                "aws_secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            }
        if account not in self._account_credentials:
            sts = self.client("sts")
            creds = sts.assume_role(
                RoleArn=f"arn:aws:iam::{account}:role/lakegov-local",
                RoleSessionName="lakegov-local",
            )["Credentials"]
            self._account_credentials[account] = {
                "aws_access_key_id": creds["AccessKeyId"],
                "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"],
            }
        return self._account_credentials[account]

    @property
    def deployer_arn(self) -> str:
        """Who the default local credentials are: the deploying identity, a data lake
        administrator (as the README asks of whoever deploys)."""
        return f"arn:aws:sts::{self.account}:user/moto"  # what moto says they are

    def athena(self) -> LocalAthena:
        """The local Athena (created on the first Athena call, DuckDB on the first query)."""
        with self._athena_lock:  # not _ENV_LOCK: a handler holds that while it calls Athena
            if self._athena is None:
                from lakegov.local.athena.engine import LocalAthenaEngine
                from lakegov.local.athena.service import LocalAthena

                clients: dict[str, Any] = {}

                def client(service: str) -> Any:
                    if service not in clients:
                        clients[service] = self.client(service)
                    return clients[service]

                engine = LocalAthenaEngine(
                    glue=client("glue"),
                    s3=client("s3"),
                    endpoint_url=self.endpoint_url,
                    region=self.region,
                    credentials=(
                        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    ),
                    access=self.access_policy,
                    unrestricted=self._unrestricted,
                )
                bucket = self.outputs.get("FormattedBucketName", "")
                self._athena = LocalAthena(
                    engine=engine,
                    clients=client,
                    account=self.account,
                    region=self.region,
                    # a new account's primary workgroup has no output location: this one's
                    # results go under the formatted bucket, so no client has to say where
                    default_output=f"s3://{bucket}/_athena_results/" if bucket else "",
                )
            return self._athena

    def access_policy(self) -> Any:
        """Lake Formation's evaluator over this runtime's catalog (None until it exists)."""
        try:
            from lakegov.governance.access import AccessPolicy
        except ImportError:
            return None
        return AccessPolicy(self.client("lakeformation"), self.client("glue"))

    def _unrestricted(self, principal: str) -> bool:
        if principal == self.deployer_arn:
            return True
        policy = self.access_policy()
        return bool(policy is not None and policy.is_unrestricted(principal))

    def start(self) -> LocalRuntime:
        from werkzeug.serving import WSGIRequestHandler

        from lakegov.local import moto_lakeformation
        from lakegov.local.athena.server import AthenaMiddleware, LocalEndpoint
        from lakegov.local.states import StatesMiddleware

        moto_lakeformation.install()  # data cells filters, tags on untagged resources

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
        # HTTP/1.1 keeps connections open between calls: a new TCP connection per AWS call
        # otherwise costs about a sixth of the dispatcher's time
        WSGIRequestHandler.protocol_version = "HTTP/1.1"
        self._server = LocalEndpoint(
            "127.0.0.1",
            self.port,
            lambda app: StatesMiddleware(
                AthenaMiddleware(
                    app, self.athena, self.deployer_arn, LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
                ),
                self.state_machines,
            ),
        )
        self._server.start()
        self._wait_for_server()
        self._reset_backends()  # moto's state is process-wide: start from nothing
        builder = StackBuilder(
            self.template_path,
            self.client,
            endpoint_url=self.endpoint_url,
            stack=self.stack_name,
            region=self.region,
            account=self.account,
            parameters=self.parameters,
        )
        self.stack = builder.build()
        for bus in self.stack.buses:
            self._observe(bus)
        code_dirs = {str(fn.code_dir) for fn in self.stack.functions.values()}
        for code_dir in sorted(code_dirs):
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
        thread = threading.Thread(
            target=self._dispatch_loop, name="lakegov-dispatcher", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        logger.debug("embedded runtime started", extra={"endpoint": self.endpoint_url})
        return self

    def stop(self) -> None:
        self._stop.set()
        self.state_machines.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._athena is not None:
            self._athena.close()
            self._athena = None
        if self._server is not None:
            self._reset_backends()
            self._server.stop()
            self._server = None
        if self._work_dir is not None:
            self._work_dir.cleanup()
            self._work_dir = None

    def _reset_backends(self) -> None:
        """Forget every resource (moto keeps them per process, not per server)."""
        import urllib.request

        url = f"{self.endpoint_url}/moto-api/reset"  # always http://127.0.0.1:<port>
        request = urllib.request.Request(url, method="POST")  # noqa: S310
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def _wait_for_server(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.5),
            ):
                return
            time.sleep(0.05)
        raise ConfigurationError(f"moto server did not start on port {self.port}")

    # -- outputs -----------------------------------------------------------------------
    @property
    def outputs(self) -> dict[str, str]:
        assert self.stack is not None, "start() first"
        return {
            **self.stack.outputs,
            "EndpointUrl": self.endpoint_url,
            "Region": self.region,
            "AccountId": self.account,
        }

    def write_outputs(self, path: Path) -> None:
        path.write_text(json.dumps(self.outputs, indent=2) + "\n", encoding="utf-8")

    def function_environment(self, fn: FunctionSpec) -> dict[str, str]:
        return {
            **LOCAL_CREDENTIALS,
            **fn.environment,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "LAKEGOV_ACCOUNT_ID": self.account,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
            "LAKEGOV_LOCAL": "1",
            "LAKEGOV_LOCAL_RUNS_DIR": str(self.work_dir / "runs"),
        }

    # -- observing events --------------------------------------------------------------
    def _observe(self, bus: str) -> None:
        """A local-only rule copying every lakegov event on ``bus`` to an observer queue."""
        sqs, events = self.client("sqs"), self.client("events")
        name = f"{self.stack_name}-observe-{hashlib.sha1(bus.encode()).hexdigest()[:8]}"  # noqa: S324
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{self.region}:{self.account}:{name}"
        events.put_rule(
            Name=name,
            EventBusName=bus,
            State="ENABLED",
            EventPattern=json.dumps({"source": ["lakegov"]}),
        )
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        self._observer_queues[bus] = url

    def _drain_observers(self, sqs: Any) -> bool:
        got = False
        for bus, url in list(self._observer_queues.items()):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                event["_bus"] = bus
                event["_received_at"] = time.time()
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
                for listener in list(self.listeners):
                    listener("event", event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                got = True
        return got

    def wait_for_event(
        self,
        detail_type: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        bus: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The first recorded event of ``detail_type`` (on ``bus``) matching ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if event.get("detail-type") != detail_type:
                        continue
                    if bus is not None and event.get("_bus") != bus:
                        continue
                    if predicate is None or predicate(event["detail"]):
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({str(e.get("detail-type")) for e in self.events})
                    raise TimeoutError(f"no {detail_type} event within {timeout}s (seen: {seen})")
                self._cond.wait(min(remaining, 0.5))

    def events_of(self, detail_type: str, *, bus: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [
                e
                for e in self.events
                if e.get("detail-type") == detail_type and (bus is None or e.get("_bus") == bus)
            ]

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.5) -> None:
        """Until no queue holds work and nothing runs for ``settle`` seconds."""
        assert self.stack is not None
        sqs = self.client("sqs")
        urls = {s.queue_url for s in self.stack.subscriptions if s.queue_url}
        urls.update(self._observer_queues.values())
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            pending = 0
            for url in urls:
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                pending += int(attrs["ApproximateNumberOfMessages"]) + int(
                    attrs["ApproximateNumberOfMessagesNotVisible"]
                )
            if pending == 0 and not self._busy.is_set():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.1)
        raise TimeoutError(f"runtime still busy after {timeout}s")

    # -- dispatching -------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        sqs = self.client("sqs")
        assert self.stack is not None
        while not self._stop.is_set():
            worked = False
            try:
                worked |= self._drain_observers(sqs)
                for sub in self.stack.subscriptions:
                    if self._stop.is_set():
                        break
                    if sub.source == "schedule":
                        worked |= self._maybe_schedule(sub)
                    else:
                        worked |= self._poll(sqs, sub)
            except Exception:  # the loop must survive anything a poll throws
                logger.exception("dispatcher poll failed")
                time.sleep(0.5)
            if not worked:
                time.sleep(self.poll_interval)

    def _poll(self, sqs: Any, sub: Subscription) -> bool:
        response = sqs.receive_message(
            QueueUrl=sub.queue_url,
            MaxNumberOfMessages=sub.batch_size if sub.source == "sqs" else 10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return False
        self._busy.set()
        try:
            if sub.source == "sqs":
                self._deliver_sqs_batch(sqs, sub, messages)
            else:
                for message in messages:
                    self._deliver_eventbridge(sqs, sub, message)
        finally:
            self._busy.clear()
        return True

    def _backoff(self, sqs: Any, sub: Subscription, message: Mapping[str, Any]) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        delay = min(30, 2 ** (receives - 1))
        with contextlib.suppress(Exception):
            sqs.change_message_visibility(
                QueueUrl=sub.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=delay,
            )

    def _deliver_sqs_batch(
        self, sqs: Any, sub: Subscription, messages: list[dict[str, Any]]
    ) -> None:
        records = [self._sqs_record(sub, m) for m in messages]
        invocation = self.invoke(sub.function, {"Records": records}, source=f"sqs:{sub.event_name}")
        failed: set[str] = set()
        if not invocation.ok:
            failed = {m["MessageId"] for m in messages}
        elif sub.report_batch_item_failures and isinstance(invocation.result, dict):
            failed = {f["itemIdentifier"] for f in invocation.result.get("batchItemFailures", [])}
        invocation.failed_items = len(failed)
        for message in messages:
            if message["MessageId"] in failed:
                self._backoff(sqs, sub, message)
            else:
                sqs.delete_message(QueueUrl=sub.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _deliver_eventbridge(self, sqs: Any, sub: Subscription, message: dict[str, Any]) -> None:
        event = json.loads(message["Body"])
        invocation = self.invoke(sub.function, event, source=f"eventbridge:{sub.event_name}")
        if invocation.ok:
            sqs.delete_message(QueueUrl=sub.queue_url, ReceiptHandle=message["ReceiptHandle"])
        else:
            self._backoff(sqs, sub, message)

    def _maybe_schedule(self, sub: Subscription) -> bool:
        if not self.schedules or sub.rate_seconds <= 0:
            return False
        now = time.monotonic()
        last = self._last_schedule.setdefault(id(sub), now)
        if now - last < sub.rate_seconds:
            return False
        self._last_schedule[id(sub)] = now
        self.invoke(sub.function, self.scheduled_event(sub), source=f"schedule:{sub.event_name}")
        return True

    def scheduled_event(self, sub: Subscription) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account}:rule/{sub.event_name}"],
            "detail": {},
        }

    def _sqs_record(self, sub: Subscription, message: Mapping[str, Any]) -> dict[str, Any]:
        attrs = message.get("Attributes", {})
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attrs.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "ApproximateFirstReceiveTimestamp": attrs.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": sub.queue_arn,
            "awsRegion": self.region,
        }

    def invoke(self, fn: FunctionSpec, event: Any, *, source: str = "direct") -> Invocation:
        """Call ``fn``'s handler in-process, in its own environment, as Lambda would."""
        module_name, _, attr = fn.handler.rpartition(".")
        started = time.monotonic()
        context = LambdaContext(
            function_name=fn.name,
            timeout_s=fn.timeout,
            invoked_function_arn=f"arn:aws:lambda:{self.region}:{self.account}:function:{fn.name}",
            log_group_name=f"/aws/lambda/{fn.name}",
        )
        with patched_environ(self.function_environment(fn)):
            try:
                handler = getattr(importlib.import_module(module_name), attr)
                result = handler(event, context)
                invocation = Invocation(fn.logical_id, source, True, result=result)
            except Exception as exc:  # a handler failure is an outcome, as in Lambda
                logger.warning(
                    "handler failed", extra={"function": fn.logical_id, "error": repr(exc)}
                )
                invocation = Invocation(
                    fn.logical_id, source, False, error=f"{type(exc).__name__}: {exc}"
                )
        # Metrics go nowhere locally; Powertools keeps unflushed ones when disabled and prints
        # them once 100 accumulate, so drop them after each invocation.
        metrics.clear_metrics()
        invocation.duration_ms = (time.monotonic() - started) * 1000
        self.invocations.append(invocation)
        for listener in list(self.listeners):
            listener("invocation", invocation)
        return invocation

    def function(self, logical_id: str) -> FunctionSpec:
        assert self.stack is not None
        return self.stack.functions[logical_id]
