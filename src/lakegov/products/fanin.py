"""Dependency fan-in: when has a product's input refreshed enough for it to run again?

Pure functions over the fan-in state (see :mod:`lakegov.products.store`). A dependency is
*fresh* when its latest refresh is newer than the one the last successful run consumed
(and, with ``max_age``, not older than that). Policy ``all`` waits for every dependency to
be fresh, ``any`` for one. After a run that failed for good, a product waits for at least
one refresh newer than what that run consumed, so a broken product does not loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lakegov.products.store import IDLE, RUNNING, STARTING, refreshed_times

_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def normalise_time(value: str) -> str:
    """An ISO 8601 time as fixed-width UTC text, so that text order is time order."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(_STAMP)


def epoch_of(stamp: str) -> float:
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).timestamp()


def stamp_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(_STAMP)


@dataclass(frozen=True)
class Readiness:
    """Whether a product should start now, and why (or why not)."""

    ready: bool
    reason: str
    fresh: tuple[str, ...] = ()
    waiting_for: tuple[str, ...] = ()
    snapshot: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "reason": self.reason,
            "fresh": list(self.fresh),
            "waiting_for": list(self.waiting_for),
        }


def busy(state: Mapping[str, Any], now: float) -> str | None:
    """Why no run can start now (one in progress), or None."""
    phase = state.get("phase", IDLE)
    if phase == RUNNING:
        return f"run {state.get('current_run')} is running"
    if phase == STARTING and int(state.get("lease_until", 0)) >= now:
        return f"run {state.get('current_run')} is starting"
    return None


def evaluate(
    dependency_keys: Sequence[str],
    state: Mapping[str, Any],
    *,
    policy: str = "all",
    max_age_s: int | None = None,
    now: float,
) -> Readiness:
    """Should the product start, given its state at ``now`` (epoch seconds)?"""
    refreshed = refreshed_times(state)
    snapshot = {k: refreshed[k] for k in dependency_keys if k in refreshed}
    in_progress = busy(state, now)
    if in_progress:
        return Readiness(False, in_progress, snapshot=snapshot)
    success: Mapping[str, str] = state.get("success_snapshot") or {}
    failed: Mapping[str, str] = state.get("failed_snapshot") or {}
    fresh: list[str] = []
    waiting: list[str] = []
    for key in dependency_keys:
        at = refreshed.get(key)
        if at is None:
            waiting.append(key)
        elif key in success and at <= success[key]:
            waiting.append(key)  # not refreshed since the last successful run
        elif max_age_s is not None and now - epoch_of(at) > max_age_s:
            waiting.append(key)  # refreshed, but too long ago to count
        else:
            fresh.append(key)
    if policy == "any":
        ready = bool(fresh)
        reason = "a dependency refreshed" if ready else "no dependency refreshed yet"
    else:
        ready = not waiting
        reason = (
            "every dependency refreshed"
            if ready
            else f"waiting for {len(waiting)} of {len(dependency_keys)} dependencies"
        )
    if ready and failed and not any(refreshed[k] > failed.get(k, "") for k in fresh):
        ready = False
        reason = f"run {state.get('last_run')} failed; waiting for a newer refresh"
    return Readiness(ready, reason, tuple(fresh), tuple(waiting), snapshot)


def schedule_due(state: Mapping[str, Any], schedule_s: int | None, now: float) -> bool:
    """The fallback schedule: no run started for ``schedule_s`` seconds (or ever)."""
    if not schedule_s or busy(state, now):
        return False
    last = state.get("last_started_at")
    return not last or now - epoch_of(str(last)) >= schedule_s
