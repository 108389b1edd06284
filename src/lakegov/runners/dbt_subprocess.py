"""dbt in a subprocess: dbt-core with dbt-duckdb (the project's ``local`` target), as the
``local`` runner (:mod:`lakegov.runners.dbt_duckdb`) and the tests run it.

dbt runs in its own process (its global state, logging and threads stay out of ours), from
the interpreter's own environment, with its target and log directories under a run
directory of ours so that concurrent runs of one project never share artifacts. The
project itself is only read.

The project's ``local`` target (``dbt/profiles.yml``) takes what is deployment-specific from
the environment; this runner fills in what only it knows: where DuckDB's httpfs extension
lives (the ``duckdb-ext-httpfs`` wheel, so nothing is downloaded) and the DuckDB database
file, kept under ``state_dir`` so that a partial retry finds the parents it does not rebuild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakegov.duckdb_setup import duckdb_extension_dir
from lakegov.errors import ConfigurationError
from lakegov.runners.base import dbt_selection_arguments
from lakegov.runners.dbt_results import (
    FAILED,
    SUCCESS,
    ModelRunAudit,
    audit_rows,
    load_artifact,
    run_status,
)

TIMED_OUT = "TIMED_OUT"
DEFAULT_TIMEOUT_S = 900.0
_TAIL_CHARS = 4000
_ALL_TYPES = frozenset({"model", "seed", "snapshot", "test", "unit_test", "operation"})


@dataclass(frozen=True)
class DbtRunOutcome:
    """What one dbt invocation did.

    ``status`` is ``SUCCESS`` (every node passed), ``FAILED`` (a node failed, or dbt could
    not run: see ``error``) or ``TIMED_OUT``. Artifact paths are ``None`` when dbt did not
    write them (it failed before parsing, for instance).
    """

    status: str
    return_code: int | None
    duration_s: float
    command: list[str]
    run_dir: Path
    run_results_path: Path | None
    manifest_path: Path | None
    log_path: Path
    models: list[ModelRunAudit] = field(default_factory=list)
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    def run_results(self) -> dict[str, Any] | None:
        return load_artifact(self.run_results_path) if self.run_results_path else None

    def manifest(self) -> dict[str, Any] | None:
        return load_artifact(self.manifest_path) if self.manifest_path else None


def dbt_command() -> list[str]:
    """dbt from the current interpreter's environment (never whatever is first on PATH)."""
    script = Path(sys.executable).parent / "dbt"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "dbt.cli.main"]


def _tail(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return text[-_TAIL_CHARS:]


def run_dbt_local(
    project_dir: str | Path,
    *,
    selection: Sequence[str] | None = None,
    vars: Mapping[str, Any] | None = None,
    env: Mapping[str, str],
    target: str = "local",
    command: str = "build",
    timeout_s: float = DEFAULT_TIMEOUT_S,
    run_dir: str | Path | None = None,
    state_dir: str | Path | None = None,
    process_nm: str | None = None,
    threads: int | None = None,
    base_env: Mapping[str, str] | None = None,
    dbt_executable: Sequence[str] | None = None,
) -> DbtRunOutcome:
    """Run ``dbt <command>`` on ``project_dir`` in a subprocess and collect its results.

    ``selection`` becomes ``--select`` (``None`` or empty: the whole project); ``vars``
    becomes ``--vars`` (JSON). ``env`` is laid over ``base_env`` (by default this process's
    environment, as a subprocess would inherit it) and carries the project's settings
    (``LAKEGOV_FORMATTED_BUCKET``, ``LAKEGOV_S3_ENDPOINT``, credentials...).
    ``LAKEGOV_DUCKDB_EXTENSION_DIR`` and ``LAKEGOV_DUCKDB_PATH`` are filled in when absent:
    the wheel's extension folder and ``<state_dir>/lakegov.duckdb``. Runs sharing a
    ``state_dir`` must not overlap (DuckDB locks its file). ``run_dir`` (default: a new
    temporary directory, left in place for the caller) receives ``target/``, ``logs/`` and
    ``dbt.out``. ``process_nm`` fills the audit's ``process_nm`` (default: the project
    directory's name). ``dbt_executable`` replaces :func:`dbt_command` (another venv's dbt).
    """
    project = Path(project_dir).resolve()
    if not (project / "dbt_project.yml").is_file():
        raise ConfigurationError(f"{project} is not a dbt project (no dbt_project.yml)")
    run_path = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="lakegov-dbt-"))
    run_path.mkdir(parents=True, exist_ok=True)
    run_path = run_path.resolve()
    state_path = Path(state_dir).resolve() if state_dir else run_path
    state_path.mkdir(parents=True, exist_ok=True)
    target_path, log_dir, out_path = run_path / "target", run_path / "logs", run_path / "dbt.out"

    child_env = dict(os.environ if base_env is None else base_env)
    child_env.update(env)
    if target == "local":
        child_env.setdefault("LAKEGOV_DUCKDB_EXTENSION_DIR", str(duckdb_extension_dir()))
        child_env.setdefault("LAKEGOV_DUCKDB_PATH", str(state_path / "lakegov.duckdb"))
    child_env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    child_env.setdefault("DBT_VERSION_CHECK", "false")

    argv = [
        *(dbt_executable or dbt_command()),
        command,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", target,
        "--target-path", str(target_path),
        "--log-path", str(log_dir),
        "--no-use-colors",
    ]  # fmt: skip
    if threads:
        argv += ["--threads", str(threads)]
    argv += dbt_selection_arguments(select=selection or (), vars=vars)  # --select last

    for stale in (target_path / "run_results.json", target_path / "manifest.json"):
        stale.unlink(missing_ok=True)  # a reused run_dir must not report an older run

    started = time.monotonic()
    return_code: int | None
    with out_path.open("wb") as out:
        # A session of its own, so that a timeout ends dbt and any child it started.
        proc = subprocess.Popen(
            argv, cwd=run_path, env=child_env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            return_code = proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return_code, timed_out = None, True
    duration = time.monotonic() - started

    results_file = target_path / "run_results.json"
    manifest_file = target_path / "manifest.json"
    run_results_path = results_file if results_file.is_file() else None
    manifest_path = manifest_file if manifest_file.is_file() else None

    models: list[ModelRunAudit] = []
    failed_nodes: list[str] = []
    status = SUCCESS if return_code == 0 else FAILED
    if run_results_path is not None and not timed_out:
        results = load_artifact(run_results_path)
        manifest = load_artifact(manifest_path) if manifest_path else None
        models = audit_rows(results, manifest, process_nm=process_nm or project.name)
        failed_nodes = [
            row.model_nm
            for row in audit_rows(results, manifest, process_nm="", resource_types=_ALL_TYPES)
            if row.execution_status == FAILED
        ]
        if run_status(results) == FAILED:
            status = FAILED
    error: str | None = None
    if timed_out:
        status = TIMED_OUT
        error = f"dbt {command} did not finish within {timeout_s:g} s"
    elif status == FAILED and failed_nodes:
        error = f"dbt {command} failed: {', '.join(sorted(set(failed_nodes)))}"
    elif status == FAILED:
        # dbt stopped before (or outside) the nodes: its own output says why.
        error = f"dbt {command} exited with code {return_code}: {_tail(out_path).strip()}"
    return DbtRunOutcome(
        status=status,
        return_code=return_code,
        duration_s=round(duration, 3),
        command=argv,
        run_dir=run_path,
        run_results_path=run_results_path,
        manifest_path=manifest_path,
        log_path=out_path,
        models=models,
        error=error,
    )
