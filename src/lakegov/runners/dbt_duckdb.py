"""The ``local`` runner (a product's ``runner.type``): dbt-core with dbt-duckdb over the
embedded runtime's S3 (the default there), shaped like the AWS runners.

``start`` returns at once with an external id; dbt runs in a background thread (itself a
subprocess, :func:`lakegov.runners.dbt_subprocess.run_dbt_local`), so the handler that started
it does not block for minutes. When dbt ends, the thread copies ``run_results.json`` and
``manifest.json`` to the run's artifacts prefix, exactly as the CodeBuild project does,
and puts a ``Local Run State Change`` event (source ``lakegov.local``) on the default bus,
where the run-state function's rule picks it up like a CodeBuild state change.

The dbt project is the one published to the config bucket (``dbt/project.zip``, see
``lakegov products publish-dbt``), extracted once per ETag; ``runner.project_dir`` points
at a local folder instead. Each product keeps its DuckDB file under ``<work_dir>/state/``
between runs, so a partial retry finds the parents it does not rebuild; runs sharing that
file never overlap (a lock per product).
"""

from __future__ import annotations

import importlib
import json
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.errors import PermanentError
from lakegov.observability import logger
from lakegov.runners.base import (
    FAILED,
    RUNNING,
    SUCCEEDED,
    TIMED_OUT,
    RunRequest,
    RunStateChange,
    RunStatus,
)
from lakegov.s3 import upload_file

NAME = "local"
EVENT_SOURCE = "lakegov.local"
EVENT_DETAIL_TYPE = "Local Run State Change"
DEFAULT_TIMEOUT_S = 900.0
STATE_MAP = {"SUCCESS": SUCCEEDED, "FAILED": FAILED, "TIMED_OUT": TIMED_OUT}

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def extract_project(archive: Path, target: Path) -> Path:
    """Unzip a published dbt project, refusing members that would land outside ``target``."""
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = PurePosixPath(member).parts
                if member.startswith("/") or ".." in parts:
                    raise PermanentError(f"unsafe path in the dbt project archive: {member}")
            zf.extractall(tmp)  # every member checked above
        if not (tmp / "dbt_project.yml").is_file():
            raise PermanentError("the dbt project archive has no dbt_project.yml at its root")
        if target.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@dataclass
class LocalRunner:
    """Runs dbt locally in the background; reports its end as an event."""

    s3: Any
    events: Any
    config_bucket: str
    dbt_env: Mapping[str, str]
    work_dir: Path
    project_key: str = "dbt/project.zip"
    event_bus: str = "default"
    run_dbt: Callable[..., Any] | None = (
        None  # default: lakegov.runners.dbt_subprocess.run_dbt_local
    )
    glue: Any = None  # registers the models' tables, as dbt-athena does on AWS (None: no)
    name: str = NAME
    outcomes: dict[str, RunStatus] = field(default_factory=dict)
    threads: dict[str, threading.Thread] = field(default_factory=dict)

    def start(self, request: RunRequest) -> str:
        if request.selector or request.exclude:
            raise PermanentError("the local runner takes a --select selection only")
        external_id = f"local:{request.product}:{request.run_id}"
        thread = threading.Thread(
            target=self._run, args=(request, external_id), name=f"dbt-{external_id}", daemon=True
        )
        self.threads[external_id] = thread
        thread.start()
        return external_id

    def describe(self, external_id: str, settings: Mapping[str, Any]) -> RunStatus:
        if external_id in self.outcomes:
            return self.outcomes[external_id]
        thread = self.threads.get(external_id)
        if thread is not None and thread.is_alive():
            return RunStatus(RUNNING, None, "RUNNING")
        return RunStatus(FAILED, "the local run is unknown (the process restarted?)", "UNKNOWN")

    def wait(self, external_id: str, timeout: float | None = None) -> RunStatus:
        """Block until a run's thread ends (tests and the demo)."""
        thread = self.threads.get(external_id)
        if thread is not None:
            thread.join(timeout)
        return self.describe(external_id, {})

    # -- the background part -----------------------------------------------------------
    def _project_dir(self, settings: Mapping[str, Any]) -> Path:
        if settings.get("project_dir"):
            return Path(str(settings["project_dir"]))
        try:
            head = self.s3.head_object(Bucket=self.config_bucket, Key=self.project_key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise PermanentError(
                    f"no dbt project at s3://{self.config_bucket}/{self.project_key}: "
                    "publish it with `lakegov products publish-dbt`"
                ) from exc
            raise
        etag = str(head.get("ETag", "")).strip('"') or "current"
        target = self.work_dir / "projects" / etag
        if (target / "dbt_project.yml").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        archive = target.parent / f"{etag}.zip"
        self.s3.download_file(self.config_bucket, self.project_key, str(archive))
        try:
            return extract_project(archive, target)
        finally:
            archive.unlink(missing_ok=True)

    def _run_dbt(self) -> Callable[..., Any]:
        if self.run_dbt is not None:
            return self.run_dbt
        module = importlib.import_module("lakegov.runners.dbt_subprocess")  # needs dbt-duckdb
        run: Callable[..., Any] = module.run_dbt_local
        return run

    def _run(self, request: RunRequest, external_id: str) -> None:
        started = time.monotonic()
        settings = request.settings
        status = RunStatus(FAILED, "the local run did not finish", "FAILED")
        try:
            project = self._project_dir(settings)
            state_dir = self.work_dir / "state" / request.product
            run_dir = self.work_dir / "runs" / request.product / request.run_id
            with _lock_for(state_dir):
                outcome = self._run_dbt()(
                    project,
                    selection=list(request.selection) or None,
                    vars=dict(request.vars),
                    env=dict(self.dbt_env),
                    target=str(settings.get("target", "local")),
                    command=request.command,
                    timeout_s=float(settings.get("timeout_s", DEFAULT_TIMEOUT_S)),
                    run_dir=run_dir,
                    state_dir=state_dir,
                    process_nm=request.product,
                    threads=settings.get("threads"),
                )
            self._upload_artifacts(request, outcome)
            if self.glue is not None:
                register_lake_tables(self.glue, self.s3, outcome.manifest(), outcome.run_results())
            native = str(outcome.status)
            state = STATE_MAP.get(native, FAILED)
            status = RunStatus(state, outcome.error if state != SUCCEEDED else None, native)
        except Exception as exc:  # the thread must always report an end
            logger.exception("local dbt run failed to run", extra={"external_id": external_id})
            status = RunStatus(FAILED, f"{type(exc).__name__}: {exc}"[:1000], "ERROR")
        self.outcomes[external_id] = status
        self._report(request, external_id, status, time.monotonic() - started)

    def _upload_artifacts(self, request: RunRequest, outcome: Any) -> None:
        if not request.artifacts_uri:
            return
        bucket, prefix = _split_s3(request.artifacts_uri)
        for path in (outcome.run_results_path, outcome.manifest_path):
            if path is not None and Path(path).is_file():
                upload_file(self.s3, path, bucket, f"{prefix}{Path(path).name}")

    def _report(
        self, request: RunRequest, external_id: str, status: RunStatus, duration_s: float
    ) -> None:
        detail = {
            "external_id": external_id,
            "product": request.product,
            "run_id": request.run_id,
            "status": status.state,
            "native_status": status.native,
            "reason": status.reason,
            "artifacts_uri": request.artifacts_uri,
            "duration_s": round(duration_s, 3),
        }
        try:
            response = self.events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": EVENT_DETAIL_TYPE,
                        "Detail": json.dumps(detail, default=str),
                        "EventBusName": self.event_bus,
                        "Resources": [external_id],
                    }
                ]
            )
            if response.get("FailedEntryCount"):
                logger.error("local run end event refused", extra={"detail": detail})
        except Exception:  # nothing else can report this run's end: log it loudly
            logger.exception("could not publish the local run's end", extra={"detail": detail})


def register_lake_tables(
    glue: Any, s3: Any, manifest: Mapping[str, Any] | None, results: Mapping[str, Any] | None
) -> list[str]:
    """Register in Glue each ``lake_table`` model this run built, from its Parquet file.

    On AWS dbt-athena creates the tables; the local ``lake_table`` materialization only
    writes ``<s3_data_dir><table>/data.parquet``, so the local runner registers them, and
    the lake's tables can be queried the same way (Athena SQL on the local Athena).
    """
    from lakegov.catalog import glue as catalog
    from lakegov.catalog.parquet import read_footer
    from lakegov.schema import columns_from_arrow

    built = {
        r["unique_id"] for r in (results or {}).get("results", []) if r.get("status") == "success"
    }
    registered = []
    for unique_id, node in (manifest or {}).get("nodes", {}).items():
        config = node.get("config") or {}
        if unique_id not in built or config.get("materialized") != "lake_table":
            continue
        data_dir = str(config.get("s3_data_dir") or "")
        if not data_dir:
            continue
        name = str(node.get("alias") or node["name"])
        location = f"{data_dir.rstrip('/')}/{name}/"
        bucket, key = _split_s3(f"{location}data.parquet")
        columns = columns_from_arrow(read_footer(s3, bucket, key).schema)  # the footer only
        table_input = catalog.new_table_input(
            name, columns, [], location, {"lakegov.product_model": unique_id}
        )
        database = str(node["schema"])
        existing = catalog.get_table(glue, database, name)
        if existing is None:
            catalog.create_table(glue, database, table_input)
        else:
            catalog.update_table(glue, existing, table_input)
        registered.append(f"{database}.{name}")
    return registered


def parse_event(event: Mapping[str, Any]) -> RunStateChange | None:
    if event.get("source") != EVENT_SOURCE or event.get("detail-type") != EVENT_DETAIL_TYPE:
        return None
    detail = event.get("detail") or {}
    state = str(detail.get("status", FAILED))
    status = RunStatus(
        state if state in (SUCCEEDED, FAILED, TIMED_OUT) else FAILED,
        detail.get("reason"),
        str(detail.get("native_status") or state),
    )
    return RunStateChange(
        NAME, str(detail.get("external_id", "")), status, at=event.get("time"), details=detail
    )
