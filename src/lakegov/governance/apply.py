"""Applying a plan: batched, retried, every outcome reported.

Order: LF-Tags (create, extend), data cells filters, tag assignments, grants, revokes,
tag removals.
Grants and revokes go in ``BatchGrantPermissions`` / ``BatchRevokePermissions`` calls of at
most 20 entries. A call that is throttled or hits ``ConcurrentModificationException`` is
retried with exponential backoff; entries that fail transiently inside a batch are retried
in the next round; other failures are collected, never raised, so one bad grant does not
hide the others. ``AlreadyExistsException`` counts as done.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.governance.current_state import TRANSIENT_CODES
from lakegov.governance.plan import Change, Plan

BATCH_SIZE = 20  # BatchGrantPermissions / BatchRevokePermissions limit
TAG_VALUES_PER_CALL = 50  # CreateLFTag / UpdateLFTag limit
DONE_CODES = frozenset({"AlreadyExistsException"})

APPLIED = "applied"
ALREADY_DONE = "already_done"
FAILED = "failed"


@dataclass
class ChangeOutcome:
    change: Change
    status: str
    error_code: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"status": self.status, **self.change.to_dict()}
        if self.error_code:
            out["error_code"] = self.error_code
            out["error_message"] = self.error_message or ""
        return out


@dataclass
class ApplyResult:
    """What happened to each change, and what it cost in API calls."""

    outcomes: list[ChangeOutcome] = field(default_factory=list)
    write_calls: int = 0  # requests sent to write APIs, retries included
    calls: dict[str, int] = field(default_factory=dict)  # by operation
    retries: int = 0

    @property
    def failed(self) -> list[ChangeOutcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return {
            "ok": self.ok,
            "counts": counts,
            "write_calls": self.write_calls,
            "calls": dict(sorted(self.calls.items())),
            "retries": self.retries,
            "outcomes": [o.to_dict() for o in self.outcomes],
        }


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def in_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in consecutive lists of at most ``size`` (AWS batch limits)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


class _Applier:
    def __init__(
        self,
        lf: Any,
        catalog_id: str,
        *,
        sleep: Callable[[float], None],
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        rng: random.Random,
    ) -> None:
        self.lf = lf
        self.catalog_id = catalog_id
        self.sleep = sleep
        self.max_attempts = max(1, max_attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.rng = rng
        self.result = ApplyResult()

    def backoff(self, attempt: int) -> None:
        """Exponential backoff with jitter before attempt ``attempt + 1``."""
        delay = min(self.max_delay, self.base_delay * (2**attempt))
        self.result.retries += 1
        self.sleep(delay * (0.5 + self.rng.random() / 2))

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One write API call, retried on throttling and concurrent modification."""
        fn = getattr(self.lf, operation)
        attempt = 0
        while True:
            self.result.write_calls += 1
            self.result.calls[operation] = self.result.calls.get(operation, 0) + 1
            try:
                return dict(fn(**kwargs))
            except ClientError as exc:
                attempt += 1
                if _code(exc) not in TRANSIENT_CODES or attempt >= self.max_attempts:
                    raise
                self.backoff(attempt - 1)

    def record(
        self, change: Change, status: str, code: str | None = None, msg: str | None = None
    ) -> None:
        self.result.outcomes.append(ChangeOutcome(change, status, code, msg))

    # LF-Tags
    def tag(self, change: Change) -> None:
        assert change.tag_key is not None
        values = list(change.tag_values)
        chunks = list(in_batches(values, TAG_VALUES_PER_CALL)) or [[]]
        try:
            if change.action == "create_lf_tag":
                try:
                    self.call(
                        "create_lf_tag",
                        CatalogId=self.catalog_id,
                        TagKey=change.tag_key,
                        TagValues=chunks[0],
                    )
                except ClientError as exc:
                    if _code(exc) not in DONE_CODES:
                        raise
                    # created meanwhile: make sure our values are there
                    current = self.lf.get_lf_tag(CatalogId=self.catalog_id, TagKey=change.tag_key)
                    have = set(current.get("TagValues") or [])
                    missing = [v for v in values if v not in have]
                    chunks = [[], *in_batches(missing, TAG_VALUES_PER_CALL)]
                rest = chunks[1:]
            else:
                rest = chunks
            for chunk in rest:
                if chunk:
                    self.call(
                        "update_lf_tag",
                        CatalogId=self.catalog_id,
                        TagKey=change.tag_key,
                        TagValuesToAdd=chunk,
                    )
        except ClientError as exc:
            self.record(change, FAILED, _code(exc), _message(exc))
            return
        self.record(change, APPLIED)

    def data_cells_filter(self, change: Change) -> None:
        op = f"{change.action.split('_', 1)[0]}_data_cells_filter"
        try:
            self.call(op, TableData=change.data_cells_filter)
        except ClientError as exc:
            if op == "create_data_cells_filter" and _code(exc) in DONE_CODES:
                self.record(change, ALREADY_DONE)
            else:
                self.record(change, FAILED, _code(exc), _message(exc))
            return
        self.record(change, APPLIED)

    def assign(self, change: Change) -> None:
        tags = [
            {"CatalogId": self.catalog_id, "TagKey": t["TagKey"], "TagValues": list(t["TagValues"])}
            for t in change.lf_tags
        ]
        attempt = 0
        while True:
            try:
                resp = self.call(
                    "add_lf_tags_to_resource",
                    CatalogId=self.catalog_id,
                    Resource=change.resource,
                    LFTags=tags,
                )
            except ClientError as exc:
                self.record(change, FAILED, _code(exc), _message(exc))
                return
            failures = resp.get("Failures") or []
            transient = [
                f for f in failures if (f.get("Error") or {}).get("ErrorCode") in TRANSIENT_CODES
            ]
            final = [f for f in failures if f not in transient]
            attempt += 1
            if final or (transient and attempt >= self.max_attempts):
                first = (final or transient)[0]
                err = first.get("Error") or {}
                tag = (first.get("LFTag") or {}).get("TagKey")
                self.record(
                    change, FAILED, err.get("ErrorCode"), f"{tag}: {err.get('ErrorMessage', '')}"
                )
                return
            if not transient:
                self.record(change, APPLIED)
                return
            retry_keys = {(f.get("LFTag") or {}).get("TagKey") for f in transient}
            tags = [t for t in tags if t["TagKey"] in retry_keys]
            self.backoff(attempt - 1)

    def untag(self, change: Change) -> None:
        """``RemoveLFTagsFromResource``: a tag already gone counts as done."""
        tags = [
            {"CatalogId": self.catalog_id, "TagKey": t["TagKey"], "TagValues": list(t["TagValues"])}
            for t in change.lf_tags
        ]
        try:
            resp = self.call(
                "remove_lf_tags_from_resource",
                CatalogId=self.catalog_id,
                Resource=change.resource,
                LFTags=tags,
            )
        except ClientError as exc:
            if _code(exc) == "EntityNotFoundException":
                self.record(change, ALREADY_DONE)
            else:
                self.record(change, FAILED, _code(exc), _message(exc))
            return
        failures = resp.get("Failures") or []
        if failures:
            err = failures[0].get("Error") or {}
            self.record(change, FAILED, err.get("ErrorCode"), err.get("ErrorMessage"))
            return
        self.record(change, APPLIED)

    def batch(self, operation: str, changes: list[Change]) -> None:
        pending = list(changes)
        attempt = 0
        while pending:
            retry: list[Change] = []
            for chunk in in_batches(pending, BATCH_SIZE):
                entries = [
                    {
                        "Id": str(i),
                        "Principal": {"DataLakePrincipalIdentifier": c.principal},
                        "Resource": c.resource,
                        "Permissions": list(c.permissions),
                        "PermissionsWithGrantOption": list(c.permissions_with_grant_option),
                    }
                    for i, c in enumerate(chunk)
                ]
                try:
                    resp = self.call(operation, CatalogId=self.catalog_id, Entries=entries)
                except ClientError as exc:
                    for c in chunk:
                        self.record(c, FAILED, _code(exc), _message(exc))
                    continue
                failed: dict[int, dict[str, Any]] = {}
                for f in resp.get("Failures") or []:
                    entry_id = (f.get("RequestEntry") or {}).get("Id")
                    if entry_id is not None and str(entry_id).isdigit():
                        failed[int(entry_id)] = f.get("Error") or {}
                for i, c in enumerate(chunk):
                    err = failed.get(i)
                    if err is None:
                        self.record(c, APPLIED)
                    elif err.get("ErrorCode") in DONE_CODES:
                        self.record(c, ALREADY_DONE)
                    elif (
                        err.get("ErrorCode") in TRANSIENT_CODES and attempt + 1 < self.max_attempts
                    ):
                        retry.append(c)
                    else:
                        self.record(c, FAILED, err.get("ErrorCode"), err.get("ErrorMessage"))
            pending = retry
            if pending:
                self.backoff(attempt)
                attempt += 1


def apply(
    plan: Plan,
    lakeformation_client: Any,
    *,
    catalog_id: str | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_attempts: int = 6,
    base_delay: float = 0.25,
    max_delay: float = 8.0,
    rng: random.Random | None = None,
) -> ApplyResult:
    """Carry out ``plan``; never raises for per-change failures (see ``result.failed``).

    ``sleep`` and ``rng`` are injectable so tests run without waiting. ``max_attempts``
    bounds both call-level retries and rounds of per-entry retries.
    """
    applier = _Applier(
        lakeformation_client,
        catalog_id or plan.catalog_id,
        sleep=sleep,
        max_attempts=max_attempts,
        base_delay=base_delay,
        max_delay=max_delay,
        rng=rng or random.Random(),  # noqa: S311 - jitter, not security
    )
    by_action: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_action.setdefault(change.action, []).append(change)
    for change in by_action.get("create_lf_tag", []) + by_action.get("add_lf_tag_values", []):
        applier.tag(change)
    for change in by_action.get("create_data_cells_filter", []) + by_action.get(
        "update_data_cells_filter", []
    ):
        applier.data_cells_filter(change)
    for change in by_action.get("assign_lf_tags", []):
        applier.assign(change)
    applier.batch("batch_grant_permissions", by_action.get("grant", []))
    applier.batch("batch_revoke_permissions", by_action.get("revoke", []))
    for change in by_action.get("remove_lf_tags", []):
        applier.untag(change)
    return applier.result
