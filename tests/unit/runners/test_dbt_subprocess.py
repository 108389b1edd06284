"""The local runner's process handling, with a stand-in for the dbt CLI (no dbt, no AWS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from lakegov.errors import ConfigurationError
from lakegov.runners.dbt_results import FAILED, SUCCESS
from lakegov.runners.dbt_subprocess import (
    TIMED_OUT,
    DbtRunOutcome,
    duckdb_extension_dir,
    run_dbt_local,
)

REPO = Path(__file__).resolve().parents[3]
PROJECT = REPO / "dbt"
FAKE = Path(__file__).parent / "fake_dbt.py"


def fake_dbt(case: str, exit_code: int, sleep_s: float = 0.0) -> list[str]:
    # run_dbt_local appends the dbt arguments; "--" separates them from the stand-in's own
    return [sys.executable, str(FAKE), case, str(exit_code), str(sleep_s), "--"]


def recorded_call(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "fake_dbt_call.json").read_text())


def run_fake(
    run_dir: Path, case: str, exit_code: int, *, sleep_s: float = 0.0, **options: Any
) -> DbtRunOutcome:
    """The example project built by the stand-in dbt, with no selection, vars or env unless
    ``options`` give them (and nothing inherited from this process's environment)."""
    arguments: dict[str, Any] = {"selection": None, "vars": {}, "env": {}, **options}
    return run_dbt_local(
        PROJECT,
        run_dir=run_dir,
        base_env={},
        dbt_executable=fake_dbt(case, exit_code, sleep_s),
        **arguments,
    )


def test_command_line_env_and_artifacts(tmp_path: Path) -> None:
    # Given a dbt that succeeds and writes the artifacts of a clean build
    run_dir, state_dir = tmp_path / "run", tmp_path / "state"

    # When the runner starts it with a selection, vars and settings
    outcome = run_dbt_local(
        PROJECT,
        selection=["mwaa_blog_cards", "mwaa_blog_cards_exception"],
        vars={"lf_tag_domain": "cards"},
        env={"LAKEGOV_FORMATTED_BUCKET": "formatted-bucket"},
        run_dir=run_dir,
        state_dir=state_dir,
        process_nm="customers_and_cards",
        threads=3,
        base_env={"PATH": "/usr/bin", "LAKEGOV_FORMATTED_BUCKET": "overridden"},
        dbt_executable=fake_dbt("success", 0),
    )

    # Then dbt got its own target/log paths, the project as profiles dir, and the settings
    call = recorded_call(run_dir)
    argv = call["argv"]
    assert argv[0] == "build"
    assert argv[argv.index("--project-dir") + 1] == str(PROJECT)
    assert argv[argv.index("--profiles-dir") + 1] == str(PROJECT)
    assert argv[argv.index("--target") + 1] == "local"
    assert argv[argv.index("--target-path") + 1] == str(run_dir.resolve() / "target")
    assert argv[argv.index("--log-path") + 1] == str(run_dir.resolve() / "logs")
    assert json.loads(argv[argv.index("--vars") + 1]) == {"lf_tag_domain": "cards"}
    assert argv[argv.index("--threads") + 1] == "3"
    assert argv[argv.index("--select") + 1 :] == ["mwaa_blog_cards", "mwaa_blog_cards_exception"]
    assert call["cwd"] == str(run_dir.resolve())
    env = call["env"]
    assert env["PATH"] == "/usr/bin"
    assert env["LAKEGOV_FORMATTED_BUCKET"] == "formatted-bucket"
    assert env["LAKEGOV_DUCKDB_PATH"] == str(state_dir.resolve() / "lakegov.duckdb")
    assert env["LAKEGOV_DUCKDB_EXTENSION_DIR"] == str(duckdb_extension_dir())
    assert env["DBT_SEND_ANONYMOUS_USAGE_STATS"] == "false"
    # and the outcome carries the parsed audit
    assert outcome.status == SUCCESS
    assert outcome.succeeded
    assert outcome.error is None
    assert outcome.return_code == 0
    assert outcome.run_results_path == run_dir.resolve() / "target" / "run_results.json"
    assert outcome.manifest_path == run_dir.resolve() / "target" / "manifest.json"
    assert len(outcome.models) == 4
    assert {m.process_nm for m in outcome.models} == {"customers_and_cards"}


def test_the_httpfs_extension_ships_in_the_wheel() -> None:
    found = list(duckdb_extension_dir().glob("*/*/httpfs.duckdb_extension"))
    assert found, "duckdb-ext-httpfs has no httpfs extension for this platform"


def test_no_selection_builds_everything_and_explicit_env_wins(tmp_path: Path) -> None:
    run_fake(tmp_path, "success", 0, env={"LAKEGOV_DUCKDB_PATH": "/elsewhere/db.duckdb"})

    call = recorded_call(tmp_path)
    assert "--select" not in call["argv"]
    assert "--vars" not in call["argv"]
    assert call["env"]["LAKEGOV_DUCKDB_PATH"] == "/elsewhere/db.duckdb"


def test_failed_nodes_make_a_failed_outcome(tmp_path: Path) -> None:
    outcome = run_fake(tmp_path, "cards_error", 1)

    assert outcome.status == FAILED
    assert outcome.return_code == 1
    assert outcome.error == "dbt build failed: mwaa_blog_cards, mwaa_blog_cards_exception"
    assert {m.model_nm for m in outcome.models if m.execution_status == FAILED} == {
        "mwaa_blog_cards",
        "mwaa_blog_cards_exception",
    }


def test_dbt_failing_before_any_node_reports_its_output(tmp_path: Path) -> None:
    # Given dbt stops at its configuration and writes no artifacts
    outcome = run_fake(tmp_path, "-", 2)

    assert outcome.status == FAILED
    assert outcome.run_results_path is None
    assert outcome.models == []
    assert outcome.error is not None
    assert outcome.error.startswith("dbt build exited with code 2")
    assert "LAKEGOV_X" in outcome.error


def test_stale_artifacts_of_a_reused_run_dir_are_not_reported(tmp_path: Path) -> None:
    run_fake(tmp_path, "success", 0)

    outcome = run_fake(tmp_path, "-", 2)

    assert outcome.run_results_path is None
    assert outcome.status == FAILED


def test_timeout_kills_dbt(tmp_path: Path) -> None:
    outcome = run_fake(tmp_path, "success", 0, sleep_s=30, timeout_s=0.5)

    assert outcome.status == TIMED_OUT
    assert outcome.return_code is None
    assert outcome.duration_s < 10
    assert outcome.error == "dbt build did not finish within 0.5 s"


def test_a_directory_without_dbt_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a dbt project"):
        run_dbt_local(tmp_path, selection=None, vars={}, env={})
