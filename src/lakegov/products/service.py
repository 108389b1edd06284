"""The products' unit of work: fan-in on DatasetRefreshed, starting runs, finishing them.

* :func:`on_dataset_refreshed` records a refresh for every product depending on it, and
  starts each product whose dependencies are now fresh (:mod:`lakegov.products.fanin`).
* :func:`advance` is the one place a run starts: a pending retry first, else the fan-in
  decision (or the schedule fallback). The start is claimed by one conditional write per
  generation (``ProductStore.claim_start``), so a product starts exactly once even when
  its last two refreshes are handled at the same moment.
* :func:`on_run_state_change` turns a runner's end into the run audit (per model from
  dbt's ``run_results.json``), ``ProductRunFinished``, ``DatasetRefreshed`` for what the
  product refreshes, an alarm on failure and a retry of the failed models and their
  children.
* :func:`sweep` (on a schedule) polls runners without state-change events (MWAA), takes
  over stuck starts, starts pending retries and the schedule fallbacks.

Each takes a :class:`~lakegov.products.context.ProductsContext`; what a run's end reports
besides its state, audit and events (lake records, the alarm) is
:mod:`lakegov.products.run_reports`'s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import Event, utc_now
from lakegov.observability import count, logger
from lakegov.products.artifacts import MAX_MODELS_IN_EVENT, artifacts_prefix
from lakegov.products.context import ProductsContext
from lakegov.products.fanin import Readiness, evaluate, normalise_time, schedule_due, stamp_of
from lakegov.products.model import Product, event_keys
from lakegov.products.run_end import decide_run_end
from lakegov.products.run_reports import alarm_failed_run, record_in_lake
from lakegov.products.store import IDLE, RUNNING, STARTING
from lakegov.runners import ecs
from lakegov.runners.base import (
    FAILED,
    STOPPED,
    SUCCEEDED,
    TIMED_OUT,
    Runner,
    RunRequest,
    RunStateChange,
    RunStatus,
    run_token,
)

RUN_KIND = "run"
FINAL_RUN_STATUSES = frozenset({SUCCEEDED, FAILED, TIMED_OUT, STOPPED})
POLLED_RUNNERS = frozenset({"mwaa"})  # no state-change events: the sweeper asks


# -- fan-in ------------------------------------------------------------------------------
def on_dataset_refreshed(detail: Mapping[str, Any], ctx: ProductsContext) -> dict[str, Any]:
    """Record one DatasetRefreshed for every product depending on it; start the ready ones."""
    keys = event_keys(detail.get("dataset"), detail.get("database"), detail.get("table"))
    refreshed_at = normalise_time(str(detail.get("refreshed_at") or utc_now()))
    outcome: dict[str, Any] = {"keys": keys, "products": {}}
    for name in ctx.store.products_for(keys):
        if detail.get("product") == name:
            continue  # a product never triggers itself (validation refuses such cycles too)
        product = ctx.product(name)
        if product is None:
            continue
        mine = set(product.dependency_keys(ctx.glue_prefix)) & set(keys)
        newer = False
        for key in sorted(mine):
            recorded, _ = ctx.store.record_refresh(name, key, refreshed_at)
            newer |= recorded
        trigger = {
            "type": "refresh",
            "dataset": detail.get("dataset"),
            "database": detail.get("database"),
            "table": detail.get("table"),
            "refreshed_at": refreshed_at,
        }
        outcome["products"][name] = {"recorded": newer, **advance(product, ctx, trigger=trigger)}
    count("DatasetRefreshedHandled")
    return outcome


def readiness(product: Product, state: Mapping[str, Any], ctx: ProductsContext) -> Readiness:
    return evaluate(
        product.dependency_keys(ctx.glue_prefix),
        state,
        policy=product.policy,
        max_age_s=product.max_age_s,
        now=ctx.clock(),
    )


def advance(
    product: Product,
    ctx: ProductsContext,
    *,
    trigger: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    allow_schedule: bool = False,
) -> dict[str, Any]:
    """Start the product's next run if one is due: a pending retry, else fan-in, else schedule.

    Safe to call any number of times, concurrently: only one caller per generation wins.
    """
    state = dict(state if state is not None else ctx.store.get_state(product.name))
    now = ctx.clock()
    if state.get("phase") == STARTING:
        if int(state.get("lease_until", 0)) < int(now) and state.get("current_run"):
            return _resume(product, ctx, state)
        return {"started": False, "reason": "a start is in progress"}
    retry = state.get("retry")
    if retry and state.get("phase", IDLE) == IDLE:
        run = {
            "attempt": int(retry["attempt"]),
            "run_snapshot": retry.get("snapshot") or {},
            "selection": list(retry.get("selection") or []),
            "selector": None,
            "trigger": {"type": "retry", "of": retry.get("of")},
        }
        return _claim_and_launch(product, ctx, state, run)
    decision = readiness(product, state, ctx)
    if decision.ready:
        run = {
            "attempt": 1,
            "run_snapshot": dict(decision.snapshot),
            "selection": list(product.select),
            "selector": product.selector,
            "trigger": dict(trigger or {"type": "refresh"}),
        }
        return {**_claim_and_launch(product, ctx, state, run), "readiness": decision.to_dict()}
    if allow_schedule and schedule_due(state, product.schedule_s, now):
        run = {
            "attempt": 1,
            "run_snapshot": dict(decision.snapshot),
            "selection": list(product.select),
            "selector": product.selector,
            "trigger": {"type": "schedule", "every_s": product.schedule_s},
        }
        return {**_claim_and_launch(product, ctx, state, run), "readiness": decision.to_dict()}
    return {"started": False, "readiness": decision.to_dict()}


def new_run_id(now: float, generation: int, attempt: int) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + f"-g{generation}-a{attempt}"


def _claim_and_launch(
    product: Product, ctx: ProductsContext, state: Mapping[str, Any], run: Mapping[str, Any]
) -> dict[str, Any]:
    now = ctx.clock()
    generation = int(state.get("generation", 0))
    run_id = new_run_id(now, generation + 1, int(run["attempt"]))
    runner = product.runner_name(ctx.default_runner)
    # The run (id, runner, attempt, idempotency token) is persisted before the runner is
    # asked to start it: whoever takes over an expired lease starts this same run again,
    # and the runner's idempotency hands back the job already started.
    claimed = ctx.store.claim_start(
        product.name,
        generation=generation,
        now=int(now),
        lease_s=ctx.lease_s,
        run={
            **run,
            "current_run": run_id,
            "runner": runner,
            "start_token": run_token(product.name, run_id),
            "last_started_at": stamp_of(now),
        },
    )
    if claimed is None:
        count("ProductStartRacesLost")
        return {"started": False, "reason": "another handler claimed this generation"}
    return launch(product, ctx, claimed)


def _resume(product: Product, ctx: ProductsContext, state: Mapping[str, Any]) -> dict[str, Any]:
    """Take over a start whose lease expired: the same run, the same idempotency token."""
    run_id = str(state["current_run"])
    resumed = ctx.store.resume_start(
        product.name, run_id, now=int(ctx.clock()), lease_s=ctx.lease_s
    )
    if resumed is None:
        count("ProductStartRacesLost")
        return {"started": False, "reason": "another handler took over this start"}
    count("ProductStartsResumed")
    logger.warning(
        "resuming a start whose lease expired",
        extra={"product": product.name, "run_id": run_id, "runner": resumed.get("runner")},
    )
    return {**launch(product, ctx, resumed, resumed=True), "resumed": True}


def launch(
    product: Product, ctx: ProductsContext, state: Mapping[str, Any], *, resumed: bool = False
) -> dict[str, Any]:
    """Start the claimed run (``state`` is ``starting``) on the product's runner.

    ``resumed``: a takeover of an expired start; the runner may hand back the job the first
    start created (idempotency token / execution name), which may even have ended already.
    """
    run_id = str(state["current_run"])
    runner_name = str(state.get("runner") or product.runner_name(ctx.default_runner))
    attempt = int(state.get("attempt", 1))
    selection = tuple(state.get("selection") or ())
    request = RunRequest(
        product=product.name,
        run_id=run_id,
        selection=selection,
        vars=product.vars,
        settings=product.runner_settings,
        exclude=product.exclude,
        selector=state.get("selector") or None,
        command=product.command,
        attempt=attempt,
        artifacts_uri=f"s3://{ctx.config_bucket}/{artifacts_prefix(product.name, run_id)}",
        project_uri=f"s3://{ctx.config_bucket}/{ctx.dbt_project_key}",
        idempotency_token=str(state.get("start_token") or ""),
    )
    trigger = dict(state.get("trigger") or {})
    started_at = utc_now()
    base = {
        "runner": runner_name,
        "attempt": attempt,
        "selection": list(selection),
        "trigger": trigger,
        "generation": int(state.get("generation", 0)),
        "artifacts_uri": request.artifacts_uri,
        "started_at": started_at,
    }
    ctx.audit.record(
        RUN_KIND,
        product.name,
        run_id,
        "STARTING",
        note="resumed after the start lease expired" if resumed else "",
        attributes={**base, "start_token": request.token},
    )
    runner = ctx.runners(runner_name)
    try:
        external_id = runner.start(request)
    except Exception as exc:
        return _start_failed(product, ctx, state, run_id, base, exc, resumed=resumed)
    # If a write below fails, the state stays ``starting`` of this run: the lease's
    # takeover (:func:`_resume`) starts the same run again, idempotently, and records it.
    ctx.store.put_run_ref(
        runner_name,
        external_id,
        product=product.name,
        run_id=run_id,
        extra={"settings": dict(product.runner_settings)},
    )
    # Clears any pending retry too: a run that started supersedes it.
    ctx.store.mark_running(product.name, run_id, runner=runner_name, external_id=external_id)
    ctx.audit.record(
        RUN_KIND, product.name, run_id, "STARTED", attributes={"external_id": external_id}
    )
    if resumed:
        ended = _ended_meanwhile(product, ctx, runner, runner_name, run_id, external_id)
        if ended is not None:
            return {"started": False, "run_id": run_id, "external_id": external_id, **ended}
    ctx.publisher.publish(
        "ProductRunStarted",
        {
            "product": product.name,
            "run_id": run_id,
            "runner": runner_name,
            "selection": list(selection),
            "trigger": trigger,
            "attempt": attempt,
            "external_id": external_id,
            "started_at": started_at,
        },
    )
    count("ProductRunsStarted")
    logger.info(
        "product run started",
        extra={"product": product.name, "run_id": run_id, "runner": runner_name},
    )
    return {"started": True, "run_id": run_id, "external_id": external_id, "runner": runner_name}


def _ended_meanwhile(
    product: Product,
    ctx: ProductsContext,
    runner: Runner,
    runner_name: str,
    run_id: str,
    external_id: str,
) -> dict[str, Any] | None:
    """After a resumed start: the job handed back may have ended before its run ref existed
    (its end event was then ignored). Finish the run now if so."""
    try:
        status = runner.describe(external_id, product.runner_settings)
    except Exception as exc:  # the end event or the sweeper will still tell
        logger.warning(
            "could not describe a resumed run's job",
            extra={"product": product.name, "run_id": run_id, "error": type(exc).__name__},
        )
        return None
    if not status.terminal:
        return None
    change = RunStateChange(runner_name, external_id, status)
    return {"finished": finish_run(product.name, run_id, change, ctx)}


def _start_failed(
    product: Product,
    ctx: ProductsContext,
    state: Mapping[str, Any],
    run_id: str,
    base: Mapping[str, Any],
    exc: Exception,
    *,
    resumed: bool = False,
) -> dict[str, Any]:
    transient = isinstance(exc, RetryableError) or is_transient(exc)
    reason = f"the {base['runner']} runner could not start: {type(exc).__name__}: {exc}"[:1000]
    if transient and resumed:
        # The first start of this run may have created its job: keep the run (``starting``,
        # same token) for the next takeover rather than a new run that could be a second job.
        count("ProductStartsRetried")
        if isinstance(exc, RetryableError):
            raise exc
        raise RetryableError(reason) from exc
    if transient:
        # Back to idle with the same inputs: the redelivered event starts it again.
        ctx.store.end_run(product.name, run_id, sets={"phase": IDLE, "last_run": run_id})
        ctx.audit.record(RUN_KIND, product.name, run_id, "FAILED", note=reason + " (will retry)")
        count("ProductStartsRetried")
        if isinstance(exc, RetryableError):
            raise exc
        raise RetryableError(reason) from exc
    if not isinstance(exc, PermanentError | ClientError | ValueError | KeyError):
        ctx.store.end_run(product.name, run_id, sets={"phase": IDLE, "last_run": run_id})
        raise exc  # a bug: let it surface (and the event be retried / dead-lettered)
    change = RunStateChange(base["runner"], "", RunStatus(FAILED, reason, "START_FAILED"))
    return finish_run(product.name, run_id, change, ctx, attempt=int(state.get("attempt", 1)))


# -- run state ---------------------------------------------------------------------------
def on_run_state_change(change: RunStateChange, ctx: ProductsContext) -> dict[str, Any]:
    """A runner's job changed state: finish the run it belongs to (ignore anything else)."""
    if not change.status.terminal:
        return {"status": "IGNORED", "reason": f"not an end state ({change.status.native})"}
    ref = ctx.store.get_run_ref(change.runner, change.external_id)
    if ref is not None and change.runner == ecs.NAME:
        # Which container is dbt's is the run's setting, not the event's: re-map with it.
        change = ecs.with_settings(change, (ref.get("extra") or {}).get("settings") or {})
    if ref is None:
        count("ForeignRunStateChanges")
        logger.info(
            "state change of a job lakegov did not start",
            extra={"runner": change.runner, "external_id": change.external_id},
        )
        return {"status": "IGNORED", "reason": "not a lakegov run"}
    return finish_run(str(ref["product"]), str(ref["run_id"]), change, ctx)


def finish_run(
    name: str,
    run_id: str,
    change: RunStateChange,
    ctx: ProductsContext,
    *,
    attempt: int | None = None,
) -> dict[str, Any]:
    """Audit, announce and follow up the end of one run (idempotent per run)."""
    run = ctx.audit.get(RUN_KIND, name, run_id) or {}
    product = ctx.product(name)
    if run.get("status") in FINAL_RUN_STATUSES:
        count("DuplicateRunStateChanges")
        if product is not None:
            advance(product, ctx)
        return {"status": "DUPLICATE", "run_id": run_id, "previous": run.get("status")}
    attempt = int(attempt or run.get("attempt", 1))
    artifacts = ctx.load_artifacts(ctx.s3, ctx.config_bucket, name, run_id)
    rows = ctx.dbt.rows(artifacts, process_nm=name)
    failed_rows = [r for r in rows if r.status == "FAILED"]
    for row in rows:
        ctx.audit.record(
            RUN_KIND,
            name,
            f"{run_id}#{row.model_nm}",
            row.status,
            attributes={**row.fields, "run_id": run_id, "unique_id": row.unique_id},
        )
    record_in_lake(ctx, name, run_id, change.runner, run, rows, artifacts)
    state = ctx.store.get_state(name)
    finished_at = utc_now()
    end = decide_run_end(
        change,
        dbt_failed=ctx.dbt.failed(artifacts),
        failed_rows=failed_rows,
        attempt=attempt,
        max_attempts=product.max_attempts if product else 1,
        retry_candidates=(
            None
            if product is None
            else ctx.dbt.failed_and_children(artifacts)
            if artifacts.present
            else list(run.get("selection") or product.select)
        ),
        artifacts_present=artifacts.present,
        run_id=run_id,
        snapshot=state.get("run_snapshot") or {},
        finished_at=finished_at,
    )
    status, reason, retry_selection, will_retry = (
        end.status,
        end.reason,
        end.retry_selection,
        end.will_retry,
    )
    max_attempts = product.max_attempts if product else 1
    after = ctx.store.end_run(name, run_id, sets=end.sets, remove=end.remove)
    if after is None:
        # Another delivery of this end (or the sweeper) won the transition: it announces,
        # alarms and audits the run; this one must not do any of it a second time.
        count("DuplicateRunStateChanges")
        return {"status": "DUPLICATE", "run_id": run_id}

    models = [r.fields for r in rows][:MAX_MODELS_IN_EVENT]
    finished: dict[str, Any] = {
        "product": name,
        "run_id": run_id,
        "runner": change.runner,
        "status": status,
        "failure_reason": reason if status != SUCCEEDED else None,
        "models": [dict(m) for m in models],
        "attempt": attempt,
        "external_id": change.external_id or None,
        "finished_at": finished_at,
    }
    if run.get("started_at"):
        finished["started_at"] = run["started_at"]
    if status != SUCCEEDED and retry_selection:
        finished["retry_selection"] = retry_selection
    events = [Event("ProductRunFinished", finished)]
    if status == SUCCEEDED and product is not None:
        for output in product.outputs(ctx.glue_prefix):
            refreshed = {
                "dataset": output.dataset,
                "database": output.database,
                "table": output.table,
                "refreshed_at": finished_at,
                "mode": "product",
                "product": name,
                "run_id": run_id,
                "producer_account": ctx.account_id or None,
                "environment": ctx.environment or None,
            }
            events.append(Event("DatasetRefreshed", {k: v for k, v in refreshed.items() if v}))
    ctx.publisher.publish_all(events)
    if status != SUCCEEDED:
        alarm_failed_run(
            ctx, name, run_id, status, reason, attempt, max_attempts, will_retry, retry_selection
        )
    ctx.audit.record(
        RUN_KIND,
        name,
        run_id,
        status,
        note=(reason or "")[:500],
        attributes={
            "finished_at": finished_at,
            "failure_reason": reason if status != SUCCEEDED else None,
            "models_total": len(rows),
            "models_failed": len(failed_rows),
            "retry_selection": retry_selection,
            "will_retry": will_retry,
        },
    )
    count("ProductRunsSucceeded" if status == SUCCEEDED else "ProductRunsFailed")
    next_run: dict[str, Any] = {}
    if product is not None:
        next_run = advance(product, ctx, state=after)
    return {
        "status": status,
        "run_id": run_id,
        "models": len(rows),
        "retry_selection": retry_selection,
        "will_retry": will_retry,
        "next": next_run,
    }


# -- sweeper -----------------------------------------------------------------------------
def sweep(ctx: ProductsContext) -> dict[str, Any]:
    """Poll what has no events, take over stuck starts, start retries and schedules."""
    outcome: dict[str, Any] = {}
    count("ProductSweeps")
    for definition in ctx.store.list_definitions():
        if definition.get("status") != "ACTIVE":
            continue
        name = str(definition["subject"])
        product = ctx.product(name)
        if product is None:
            continue
        state = ctx.store.get_state(name)
        try:
            outcome[name] = _sweep_one(product, state, ctx)
        except RetryableError as exc:
            outcome[name] = {"error": str(exc)}
    return outcome


def _sweep_one(product: Product, state: Mapping[str, Any], ctx: ProductsContext) -> dict[str, Any]:
    phase = state.get("phase", IDLE)
    runner = str(state.get("runner") or "")
    if phase == RUNNING and runner in POLLED_RUNNERS and state.get("external_id"):
        status = ctx.runners(runner).describe(str(state["external_id"]), product.runner_settings)
        if status.terminal:
            change = RunStateChange(runner, str(state["external_id"]), status)
            return {"polled": finish_run(product.name, str(state["current_run"]), change, ctx)}
        return {"polled": status.state}
    if phase in (IDLE, STARTING):
        return advance(product, ctx, state=state, allow_schedule=True)
    return {"phase": phase}


__all__ = [
    "STARTING",
    "advance",
    "finish_run",
    "on_dataset_refreshed",
    "on_run_state_change",
    "sweep",
]
