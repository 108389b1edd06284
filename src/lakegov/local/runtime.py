"""The embedded runtime: moto's server in a child process, the template's resources on it,
and a dispatcher that calls each function's handler with real Lambda-shaped events.

Functions run concurrently, each up to its own limit (``concurrency``, lowered by a
declared ``ReservedConcurrentExecutions`` and by an SQS source's ``MaximumConcurrency``),
on threads of this process; each invocation reads its function's settings from the
environment the runtime hands it (:func:`lakegov.app.running_with`), never from a
patched process environment. moto's server runs in its own process
(:mod:`lakegov.local.endpoint`), so its emulation does not take turns with the handlers
on one interpreter lock.

Differences from AWS, on purpose: a failed SQS message comes back after a short backoff
(1, 2, 4... seconds, at most 30) instead of the queue's visibility timeout, so local retries
and dead-lettering take seconds, not hours; a function's concurrent invocations share one
process (module globals, Powertools' logger keys), where Lambda gives each its own
execution environment.

Each SQS call the runtime makes for itself is work taken from moto's server, so it makes
few: queues are long-polled (20 s, answered as soon as a message arrives); an EventBridge
source's delivered events are deleted ten per call, at most a second after their
invocation (:class:`~lakegov.local.inbox.Inbox`); an SQS source's batching window is
gathered a receive per second, not a receive per message; and the observers that record
the buses' events for :meth:`LocalRuntime.wait_for_event` read a busy bus ten events per
receive, letting events gather for half a second when nobody waits for one. Powertools' Tracer is off outside
Lambda (it needs ``LAMBDA_TASK_ROOT``), as under ``sam local``.

Its parts: the endpoint's process (:class:`~lakegov.local.endpoint.EndpointProcess`), the
record of the buses' events (:mod:`~lakegov.local.observer`), the inbox bookkeeping
(:mod:`~lakegov.local.inbox`) and Lambda's shapes of what a handler receives
(:mod:`~lakegov.local.lambda_events`). What stays here (a little over 600 lines) is one
piece of state and its rules: the functions' slots, the count of invocations in flight,
and the order in which starting and stopping take them up and down.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lakegov.app import running_with
from lakegov.aws import Clients
from lakegov.errors import ConfigurationError
from lakegov.local.endpoint import (
    CONFIGURE_PATH,
    DEFAULT_ACCOUNT,
    DEPLOYER_KEYS,
    LOCAL_CREDENTIALS,
    EndpointProcess,
    account_credentials,
    deployer_arn,
    local_clients,
)
from lakegov.local.inbox import LONG_POLL, MAX_IDLE_POLL, Inbox, delete_received
from lakegov.local.lambda_events import (
    Invocation,
    LambdaContext,
    scheduled_event,
    sqs_record,
)
from lakegov.local.observer import BusObserver
from lakegov.local.stack import FunctionSpec, LocalStack, StackBuilder, Subscription
from lakegov.local.states import LocalStateMachines, StatesListener
from lakegov.observability import logger, metrics

DEFAULT_CONCURRENCY = 4  # per function: threads of one process, so more buys little
STOP_JOIN = 2.0  # seconds stop() waits for its pollers once the endpoint is gone
BATCHING_STEP = 1.0  # seconds between receives gathering an SQS source's batching window


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


class _Function:
    """A function's capacity on this runtime: a slot per concurrent invocation, and the
    threads that run them."""

    def __init__(self, spec: FunctionSpec, limit: int) -> None:
        self.spec = spec
        self.limit = limit
        self.slots = threading.BoundedSemaphore(limit)
        self.pool = ThreadPoolExecutor(
            max_workers=limit, thread_name_prefix=f"fn-{spec.logical_id}"
        )


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
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self.template_path = (template_path or find_template()).resolve()
        self.port = port or free_port()
        self._port_chosen = not port  # ours to choose again if another process takes it
        self.region = region
        self.account = account
        self.stack_name = stack_name
        self.parameters = dict(parameters or {})
        self.schedules = schedules
        self.concurrency = max(1, concurrency)
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.stack: LocalStack | None = None
        self.invocations: list[Invocation] = []
        self.listeners: list[Callable[[str, Any], None]] = []
        self._endpoint: EndpointProcess | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._functions: dict[str, _Function] = {}  # by _function_key
        self._attached: list[Subscription] = []  # other accounts' stacks (consumer domains)
        self._in_flight = 0  # invocations received and not yet settled
        self._cond = threading.Condition()
        self._inboxes: list[Inbox] = []  # of the EventBridge sources polled
        self._clients: dict[str, Clients] = {}
        self._clients_lock = threading.Lock()
        self._account_credentials: dict[str, dict[str, str]] = {}
        self._work_dir: tempfile.TemporaryDirectory[str] | None = None
        self.observer = BusObserver(
            self.client,
            self._stop,
            name_prefix=stack_name,
            region=region,
            account=account,
            listeners=self.listeners,
        )
        self.state_machines = LocalStateMachines(self)
        self._states: StatesListener | None = None

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
        key = account or self.account
        with self._clients_lock:
            clients = self._clients.get(key)
        if clients is None:
            credentials = self.credentials(account)  # may call STS: outside the lock
            with self._clients_lock:
                clients = self._clients.setdefault(
                    key, local_clients(self.endpoint_url, self.region, credentials)
                )
        return clients(service)

    def credentials(self, account: str | None = None) -> dict[str, str]:
        """Credentials moto maps to ``account`` (an assumed role there), default: this stack's."""
        if not account or account == self.account:
            return dict(DEPLOYER_KEYS)
        if account not in self._account_credentials:
            self._account_credentials[account] = account_credentials(self.client("sts"), account)
        return self._account_credentials[account]

    @property
    def endpoint_pid(self) -> int | None:
        """The process id of the local endpoint (moto's server), while it runs."""
        return self._endpoint.pid if self._endpoint is not None else None

    @property
    def deployer_arn(self) -> str:
        """Who the default local credentials are: the deploying identity, a data lake
        administrator (as the README asks of whoever deploys)."""
        return deployer_arn(self.account)

    def start(self) -> LocalRuntime:
        # Powertools' switches are the process's (its objects are shared by every function
        # here): locally, metrics go nowhere and nothing is traced, unless asked otherwise.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        # created here, before threads ask for it: two creating it at once would leave one
        # copy to be garbage-collected, and its directory removed under a running function
        self.work_dir.mkdir(exist_ok=True)
        try:
            self._start_states()
            self._endpoint = self._start_endpoint()
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
            bucket = self.stack.outputs.get("FormattedBucketName", "")
            if bucket:
                self._endpoint.post(CONFIGURE_PATH, f"s3://{bucket}/_athena_results/".encode())
            for bus in self.stack.buses:
                self.observer.add(bus)
        except BaseException:
            self.stop()
            raise
        self._dispatch(self.stack)
        for bus, url in self.observer.queues.items():
            self._spawn(f"observe-{bus}", self.observer.read, bus, url)
        if self.schedules:
            self._spawn("schedules", self._schedule_loop)
        logger.debug("embedded runtime started", extra={"endpoint": self.endpoint_url})
        return self

    def _dispatch(self, stack: LocalStack) -> None:
        """Capacity for ``stack``'s functions and a poller per queue-fed subscription."""
        code_dirs = {str(fn.code_dir) for fn in stack.functions.values()}
        for code_dir in sorted(code_dirs):
            if code_dir not in sys.path:
                sys.path.insert(0, code_dir)
        for spec in stack.functions.values():
            limit = self.concurrency
            if spec.reserved_concurrency > 0:
                limit = min(limit, spec.reserved_concurrency)
            self._functions[self._function_key(spec)] = _Function(spec, limit)
        for sub in stack.subscriptions:
            if sub.source != "schedule":
                self._spawn(
                    f"poll-{sub.function.account or self.account}-{sub.function.logical_id}"
                    f"-{sub.event_name}",
                    self._poll_loop,
                    sub,
                )

    def _function_key(self, spec: FunctionSpec) -> str:
        """A function's key in this runtime: its account and name (attached stacks of
        several accounts may declare functions of one logical id)."""
        return f"{spec.account or self.account}/{spec.name}"

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=f"lakegov-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _start_endpoint(self, attempts: int = 3) -> EndpointProcess:
        """The endpoint on ``self.port``; a port chosen here and taken meanwhile by another
        listener (the free port was free when chosen, not reserved) is chosen again."""
        for attempt in range(attempts):
            try:
                return EndpointProcess(
                    self.port,
                    self.account,
                    self.region,
                    states_url=self._states.url if self._states is not None else "",
                ).start()
            except ConfigurationError:
                if not self._port_chosen or attempt == attempts - 1:
                    raise
                self.port = free_port()
                self.endpoint_url = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start_states(self) -> None:
        """The listener the endpoint forwards the template's state machines' calls to:
        they run here, where the functions do (see :mod:`lakegov.local.states`)."""
        self._states = StatesListener(self.state_machines).start()

    def _stop_states(self) -> None:
        self.state_machines.stop()
        if self._states is not None:
            self._states.stop()
            self._states = None

    def stop(self) -> None:
        """Stop the functions, then the endpoint and the scratch space (those two even when
        stopping the functions fails or is interrupted: no child process is left behind)."""
        self._stop.set()
        try:
            self._stop_states()
            for function in self._functions.values():  # the invocations running end first
                function.pool.shutdown(wait=True)
            self._functions.clear()
            for inbox in self._inboxes:  # what they delivered is not handed out again
                inbox.flush()
            self._inboxes.clear()
        finally:
            # then the endpoint: a receive still waiting on a long poll ends with it, and its
            # poller (or observer) with the receive, seeing the runtime stop
            if self._endpoint is not None:
                self._endpoint.stop()
                self._endpoint = None
            deadline = time.monotonic() + STOP_JOIN
            for thread in self._threads:  # daemons: one still retrying its receive is left
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._threads.clear()
            if self._work_dir is not None:
                self._work_dir.cleanup()
                self._work_dir = None

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

    def attach(self, stack: LocalStack, account: str) -> None:
        """Dispatch the functions of another account's stack (a consumer domain's) too,
        each running with credentials of ``account`` and polling its queues there."""
        assert self.stack is not None, "start() first"
        for fn in stack.functions.values():
            fn.account = account
        self._attached.extend(stack.subscriptions)
        self._dispatch(stack)

    def _account_environment(self, account: str) -> dict[str, str]:
        """The credentials and account id of a function running in ``account``."""
        creds = self.credentials(account)
        return {
            "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
            "AWS_SESSION_TOKEN": creds["aws_session_token"],
            "LAKEGOV_ACCOUNT_ID": account,
        }

    def function_environment(self, fn: FunctionSpec) -> dict[str, str]:
        own = not fn.account or fn.account == self.account
        return {
            **LOCAL_CREDENTIALS,
            **fn.environment,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_LAMBDA_FUNCTION_NAME": fn.name,
            "LAKEGOV_ACCOUNT_ID": self.account,
            "LAKEGOV_LOCAL": "1",
            "LAKEGOV_LOCAL_RUNS_DIR": str(self.work_dir / "runs"),
            **({} if own else self._account_environment(fn.account)),
        }

    # -- observing events --------------------------------------------------------------
    @property
    def events(self) -> list[dict[str, Any]]:
        """Every lakegov event seen on this runtime's buses, in arrival order."""
        return self.observer.events

    def wait_for_event(
        self,
        detail_type: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        *,
        bus: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """The first recorded event of ``detail_type`` (on ``bus``) matching ``predicate``."""
        return self.observer.wait_for_event(detail_type, predicate, bus=bus, timeout=timeout)

    def events_of(self, detail_type: str, *, bus: str | None = None) -> list[dict[str, Any]]:
        return self.observer.events_of(detail_type, bus=bus)

    def wait_idle(self, timeout: float = 60.0, settle: float = 0.5) -> None:
        """Until no queue holds work and nothing runs for ``settle`` seconds."""
        assert self.stack is not None
        # each queue is asked in its own account (moto finds a queue by the caller's account)
        urls = {(s.queue_url, self.account) for s in self.stack.subscriptions if s.queue_url}
        urls.update((s.queue_url, s.function.account) for s in self._attached if s.queue_url)
        urls.update((url, self.account) for url in self.observer.queues.values())
        with self.observer.waited_on():
            self._wait_idle(urls, timeout, settle)

    def _wait_idle(self, urls: set[tuple[str, str]], timeout: float, settle: float) -> None:
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            with self._cond:
                running = self._in_flight
            if running:  # no need to ask the queues
                quiet_since = None
                time.sleep(0.1)
                continue
            with self._cond:
                inboxes = list(self._inboxes)
            for inbox in inboxes:  # nothing runs: what was delivered need not wait
                inbox.flush()
            pending = 0
            for url, account in urls:
                attrs = self.client("sqs", account=account).get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                pending += int(attrs["ApproximateNumberOfMessages"]) + int(
                    attrs["ApproximateNumberOfMessagesNotVisible"]
                )
            with self._cond:
                running = self._in_flight
            if pending == 0 and running == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle:
                    return
            else:
                quiet_since = None
            time.sleep(0.1)
        raise TimeoutError(f"runtime still busy after {timeout}s")

    # -- dispatching -------------------------------------------------------------------
    def _poll_loop(self, sub: Subscription) -> None:
        """Receive from ``sub``'s queue whenever its function has a free slot, and run each
        batch (SQS source) or event (EventBridge, through its inbox) on the function's threads."""
        sqs = self.client("sqs", account=sub.function.account or None)  # the queue's account
        function = self._functions[self._function_key(sub.function)]
        limit = function.limit
        if sub.max_concurrency > 0:
            limit = min(limit, sub.max_concurrency)
        source_slots = threading.BoundedSemaphore(limit)
        inbox = None
        if sub.source != "sqs":
            inbox = Inbox(sqs, sub.queue_url)
            with self._cond:
                self._inboxes.append(inbox)
        while not self._stop.is_set():
            if not self._acquire(source_slots, function):
                continue
            pause = 0.0  # an empty receive has waited already (long polling)
            try:
                messages = self._receive(sqs, sub, 1 if sub.source == "sqs" else limit)
            except Exception:  # the loop must survive anything a poll throws
                if not self._stop.is_set():  # (stopping: the endpoint is gone)
                    logger.exception("dispatcher poll failed", extra={"queue": sub.queue_url})
                messages, pause = [], MAX_IDLE_POLL
            if not messages:
                function.slots.release()
                source_slots.release()
                self._stop.wait(pause)
                continue
            with self._cond:
                self._in_flight += 1 if inbox is None else len(messages)
            if inbox is None:
                self._submit(function, source_slots, self._deliver_sqs_batch, sqs, sub, messages)
                continue
            for i, message in enumerate(messages):  # one invocation per event, as Lambda's
                if i and not self._acquire(source_slots, function, wait_forever=True):
                    with self._cond:  # stopping: what was not started comes back later
                        self._in_flight -= len(messages) - i
                    break
                self._submit(
                    function, source_slots, self._deliver_eventbridge, sqs, sub, inbox, message
                )

    def _acquire(
        self,
        source_slots: threading.BoundedSemaphore,
        function: _Function,
        *,
        wait_forever: bool = False,
    ) -> bool:
        """A slot of the event source and one of its function (False: stopping, or none yet)."""
        while not self._stop.is_set():
            if source_slots.acquire(timeout=0.2):
                while not self._stop.is_set():
                    if function.slots.acquire(timeout=0.2):
                        return True
                source_slots.release()
                return False
            if not wait_forever:
                return False
        return False

    def _submit(
        self,
        function: _Function,
        source_slots: threading.BoundedSemaphore,
        deliver: Callable[..., None],
        *args: Any,
    ) -> None:
        def run() -> None:
            try:
                deliver(*args)
            except Exception:
                logger.exception("delivery failed", extra={"function": function.spec.logical_id})
            finally:
                function.slots.release()
                source_slots.release()
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

        try:
            function.pool.submit(run)
        except RuntimeError:  # stopping: the pool takes no more work, the message comes back
            function.slots.release()
            source_slots.release()
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _receive(self, sqs: Any, sub: Subscription, slots: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": sub.queue_url,
            "MaxNumberOfMessages": sub.batch_size if sub.source == "sqs" else min(10, slots),
            "AttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
            # long polling: no request per idle queue every few milliseconds, and a message
            # is handed out as soon as it arrives
            "WaitTimeSeconds": LONG_POLL,
        }
        if sub.source != "sqs":
            # an inbox stands in for Lambda's async queue: an event is not handed out again
            # while an invocation may still be running it
            kwargs["VisibilityTimeout"] = sub.function.timeout + 30
        messages: list[dict[str, Any]] = sqs.receive_message(**kwargs).get("Messages", [])
        if sub.source == "sqs" and messages and sub.batching_window > 0:
            # Lambda's batching window: gather up to the batch size for at most that long,
            # looking again every BATCHING_STEP (a long poll would answer each new message
            # at once: one receive per message)
            deadline = time.monotonic() + sub.batching_window
            kwargs["WaitTimeSeconds"] = 0
            while len(messages) < sub.batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.wait(min(remaining, BATCHING_STEP)):
                    break
                kwargs["MaxNumberOfMessages"] = sub.batch_size - len(messages)
                try:
                    messages.extend(sqs.receive_message(**kwargs).get("Messages", []))
                except Exception:  # what was received is run, not left hidden in flight
                    if not self._stop.is_set():
                        logger.exception("dispatcher poll failed", extra={"queue": sub.queue_url})
                    break
        return messages

    def _backoff(self, sqs: Any, sub: Subscription, message: Mapping[str, Any]) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        delay = min(30, 2 ** (receives - 1))
        try:
            sqs.change_message_visibility(
                QueueUrl=sub.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=delay,
            )
        except Exception:  # the message comes back after its visibility timeout instead
            if not self._stop.is_set():
                logger.exception("retry delay not set", extra={"queue": sub.queue_url})

    def _deliver_sqs_batch(
        self, sqs: Any, sub: Subscription, messages: list[dict[str, Any]]
    ) -> None:
        records = [sqs_record(sub.queue_arn, m, self.region) for m in messages]
        invocation = self.invoke(sub.function, {"Records": records}, source=f"sqs:{sub.event_name}")
        failed: set[str] = set()
        if not invocation.ok:
            failed = {m["MessageId"] for m in messages}
        elif sub.report_batch_item_failures and isinstance(invocation.result, dict):
            failed = {f["itemIdentifier"] for f in invocation.result.get("batchItemFailures", [])}
        invocation.failed_items = len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in messages:
            if message["MessageId"] in failed:
                self._backoff(sqs, sub, message)
        if done:
            delete_received(sqs, sub.queue_url, [m["ReceiptHandle"] for m in done])

    def _deliver_eventbridge(
        self, sqs: Any, sub: Subscription, inbox: Inbox, message: dict[str, Any]
    ) -> None:
        """One invocation for one event; a delivered event is deleted with others of its
        inbox (:class:`~lakegov.local.inbox.Inbox`), a failed one comes back after its
        backoff."""
        event = json.loads(message["Body"])
        invocation = self.invoke(sub.function, event, source=f"eventbridge:{sub.event_name}")
        if invocation.ok:
            inbox.delivered(message["ReceiptHandle"])
        else:
            self._backoff(sqs, sub, message)

    def _schedule_loop(self) -> None:
        assert self.stack is not None
        timed = [s for s in self.stack.subscriptions if s.source == "schedule" and s.rate_seconds]
        last = {id(sub): time.monotonic() for sub in timed}
        while not self._stop.wait(1.0):
            for sub in timed:
                now = time.monotonic()
                if now - last[id(sub)] < sub.rate_seconds:
                    continue
                last[id(sub)] = now
                function = self._functions[self._function_key(sub.function)]
                if not function.slots.acquire(blocking=False):
                    continue  # still busy: this tick is skipped, as a throttled invoke
                with self._cond:
                    self._in_flight += 1
                tick = threading.BoundedSemaphore(1)
                tick.acquire()
                self._submit(function, tick, self._invoke_scheduled, sub)

    def _invoke_scheduled(self, sub: Subscription) -> None:
        self.invoke(sub.function, self.scheduled_event(sub), source=f"schedule:{sub.event_name}")

    def scheduled_event(self, sub: Subscription) -> dict[str, Any]:
        return scheduled_event(sub.event_name, self.account, self.region)

    def invoke(self, fn: FunctionSpec, event: Any, *, source: str = "direct") -> Invocation:
        """Call ``fn``'s handler in-process, with its own environment, as Lambda would (on the
        calling thread: the dispatcher calls it on the function's threads)."""
        module_name, _, attr = fn.handler.rpartition(".")
        started = time.monotonic()
        context = LambdaContext(
            function_name=fn.name,
            timeout_s=fn.timeout,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.region}:{fn.account or self.account}:function:{fn.name}"
            ),
            log_group_name=f"/aws/lambda/{fn.name}",
        )
        with running_with(self.function_environment(fn)):
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
        with self._cond:
            self.invocations.append(invocation)
        for listener in list(self.listeners):
            listener("invocation", invocation)
        return invocation

    def function(self, logical_id: str) -> FunctionSpec:
        assert self.stack is not None
        return self.stack.functions[logical_id]
