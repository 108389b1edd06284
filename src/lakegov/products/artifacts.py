"""Where a run's dbt artifacts live, and what they say (the run audit, the retry selection).

Every runner's job writes ``run_results.json`` and ``manifest.json`` under
``s3://<config bucket>/runs/<product>/<run_id>/``. The parsing itself is
:mod:`lakegov.runners.dbt_results` (imported lazily: it is shared with the local runner).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import RetryableError

RUNS_PREFIX = "runs/"
RUN_RESULTS = "run_results.json"
MANIFEST = "manifest.json"
MAX_MODELS_IN_EVENT = 200


def artifacts_prefix(product: str, run_id: str) -> str:
    return f"{RUNS_PREFIX}{product}/{run_id}/"


@dataclass(frozen=True)
class RunArtifacts:
    run_results: Mapping[str, Any] | None = None
    manifest: Mapping[str, Any] | None = None

    @property
    def present(self) -> bool:
        return self.run_results is not None


def _read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "NotFound"):
            return None
        if is_transient(exc):
            raise RetryableError(f"reading s3://{bucket}/{key}: {error_code(exc)}") from exc
        raise
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None  # a truncated upload: treated as no artifacts
    return data if isinstance(data, dict) else None


def load_artifacts(s3: Any, bucket: str, product: str, run_id: str) -> RunArtifacts:
    prefix = artifacts_prefix(product, run_id)
    results = _read_json(s3, bucket, prefix + RUN_RESULTS)
    manifest = _read_json(s3, bucket, prefix + MANIFEST) if results is not None else None
    return RunArtifacts(results, manifest)


@dataclass(frozen=True)
class ModelRow:
    """One run audit row (the original ``audit_control`` fields) and dbt's unique id."""

    fields: Mapping[str, Any]
    unique_id: str = ""

    @property
    def model_nm(self) -> str:
        return str(self.fields["model_nm"])

    @property
    def status(self) -> str:
        return str(self.fields["execution_status"])


@dataclass
class DbtResults:
    """The functions of :mod:`lakegov.runners.dbt_results` the run state needs.

    Injected so that tests (and a deployment without that module) can stand in for them.
    """

    audit_rows: Any = None
    retry_selection: Any = None
    run_failed: Any = None
    test_results: Any = None
    _loaded: bool = field(default=False, repr=False)

    def _load(self) -> None:
        if self._loaded:
            return
        # Lazy: the parsing lives with the local runner, and a test may inject stand-ins.
        dbt_results = importlib.import_module("lakegov.runners.dbt_results")

        self.audit_rows = self.audit_rows or dbt_results.audit_rows
        self.retry_selection = self.retry_selection or dbt_results.failed_and_children_selection
        self.test_results = self.test_results or dbt_results.dbt_test_results
        self.run_failed = self.run_failed or (
            lambda results: dbt_results.run_status(results) == dbt_results.FAILED
        )
        self._loaded = True

    def rows(self, artifacts: RunArtifacts, process_nm: str) -> list[ModelRow]:
        if artifacts.run_results is None:
            return []
        self._load()
        rows = self.audit_rows(artifacts.run_results, artifacts.manifest, process_nm=process_nm)
        out = []
        for row in rows:
            data = row.to_dict() if hasattr(row, "to_dict") else dict(row)
            out.append(ModelRow(data, str(getattr(row, "unique_id", "") or "")))
        return out

    def tests(self, artifacts: RunArtifacts) -> list[Any]:
        """Every data test's outcome (:class:`lakegov.runners.dbt_results.DbtTestResult`)."""
        if artifacts.run_results is None:
            return []
        self._load()
        return list(self.test_results(artifacts.run_results, artifacts.manifest))

    def failed_and_children(self, artifacts: RunArtifacts) -> list[str]:
        if artifacts.run_results is None or artifacts.manifest is None:
            return []
        self._load()
        return list(self.retry_selection(artifacts.run_results, artifacts.manifest))

    def failed(self, artifacts: RunArtifacts) -> bool:
        if artifacts.run_results is None:
            return False
        self._load()
        return bool(self.run_failed(artifacts.run_results))
