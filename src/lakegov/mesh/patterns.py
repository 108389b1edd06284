"""Dataset patterns to EventBridge event patterns, within EventBridge's limits.

A subscription's dataset patterns become filters on ``detail.dataset``:

- ``sales/orders`` (no ``*``): an exact string;
- ``sales/*`` (one trailing ``*``): ``{"prefix": "sales/"}``;
- ``*_daily`` (one leading ``*``): ``{"suffix": "_daily"}``;
- anything else with ``*`` (``*orders*``, ``sales/*/daily``): ``{"wildcard": ...}``.

Prefix and suffix are preferred over ``wildcard`` because EventBridge allows at most
:data:`MAX_WILDCARD_RULES_PER_BUS` rules with wildcard filters on one bus (not adjustable),
so wildcard filters are packed into rules of their own. Patterns are split over several
rules so that each stays within the event pattern size quota (:data:`MAX_PATTERN_CHARS`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lakegov.events import SOURCE

# EventBridge quotas (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html):
MAX_PATTERN_CHARS = 2048  # "Event pattern size": 2,048 characters by default, adjustable
MAX_RULES_PER_BUS = 300  # "Rules": 300 per event bus by default, adjustable
MAX_WILDCARD_RULES_PER_BUS = 30  # "Rules containing wildcards": 30 per bus, not adjustable

DATASET_FIELD = "dataset"
MATCH_ALL = "*"


@dataclass(frozen=True)
class DatasetFilter:
    """One dataset pattern and its EventBridge filter."""

    pattern: str
    kind: str  # "exact" | "prefix" | "suffix" | "wildcard"

    @property
    def filter(self) -> Any:
        if self.kind == "exact":
            return self.pattern
        if self.kind == "prefix":
            return {"prefix": self.pattern[:-1]}
        if self.kind == "suffix":
            return {"suffix": self.pattern[1:]}
        return {"wildcard": self.pattern}

    @property
    def is_wildcard(self) -> bool:
        return self.kind == "wildcard"


def classify(pattern: str) -> DatasetFilter:
    """The filter kind of one dataset pattern (see the module docstring)."""
    stars = pattern.count("*")
    if stars == 0:
        return DatasetFilter(pattern, "exact")
    if stars == 1 and pattern.endswith("*") and len(pattern) > 1:
        return DatasetFilter(pattern, "prefix")
    if stars == 1 and pattern.startswith("*") and len(pattern) > 1:
        return DatasetFilter(pattern, "suffix")
    return DatasetFilter(pattern, "wildcard")


def pattern_problems(pattern: str, *, allow_all: bool) -> list[str]:
    """Why ``pattern`` cannot be used (empty when it can)."""
    if set(pattern) == {"*"}:
        if pattern != MATCH_ALL:
            return ["use a single '*' for every dataset"]
        if not allow_all:
            return ["'*' subscribes to every dataset of every producer; set allow_all_datasets"]
        return []
    if "**" in pattern:
        return ["consecutive '*' are not allowed; one '*' already matches any characters"]
    return []


def dataset_matches(pattern: str, dataset: str) -> bool:
    """Whether ``dataset`` matches ``pattern`` ('*' = any characters, possibly none)."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return dataset == pattern
    first, *middle, last = parts
    if not dataset.startswith(first) or len(dataset) < len(first) + len(last):
        return False
    if not dataset.endswith(last):
        return False
    position = len(first)
    end = len(dataset) - len(last)
    for piece in middle:
        found = dataset.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def redundant_patterns(patterns: Sequence[str]) -> dict[str, str]:
    """Pattern -> a broader pattern of the same list that already covers it.

    Only literal patterns are checked against patterns with '*' (covering between two
    patterns with '*' is not worth the reasoning here).
    """
    out: dict[str, str] = {}
    broad = [p for p in patterns if "*" in p]
    for literal in (p for p in patterns if "*" not in p):
        for candidate in broad:
            if dataset_matches(candidate, literal):
                out[literal] = candidate
                break
    return out


def compact(pattern: Any) -> str:
    """The pattern's JSON as sent to PutRule (its length is what the quota counts)."""
    return json.dumps(pattern, separators=(",", ":"), sort_keys=True)


def base_pattern(event_types: Iterable[str]) -> dict[str, Any]:
    return {"source": [SOURCE], "detail-type": sorted(set(event_types))}


def with_filters(base: dict[str, Any], filters: list[Any]) -> dict[str, Any]:
    return {**base, "detail": {DATASET_FIELD: filters}}


class PatternTooLarge(ValueError):
    """One dataset filter alone does not fit in an event pattern."""


def build_patterns(
    event_types: Iterable[str],
    datasets: Iterable[str],
    *,
    max_chars: int = MAX_PATTERN_CHARS,
) -> list[dict[str, Any]]:
    """The event patterns (one per rule) that together match exactly ``datasets``.

    Deterministic: the same datasets in any order give the same patterns. Filters without
    wildcards come first; wildcard filters are packed into rules of their own. A bare '*'
    gives one pattern without a dataset filter. Raises PatternTooLarge when one filter
    cannot fit in ``max_chars``.
    """
    base = base_pattern(event_types)
    unique = sorted(set(datasets))
    if MATCH_ALL in unique:
        return [base]
    filters = [classify(p) for p in unique]
    plain = [f.filter for f in filters if not f.is_wildcard]
    wild = [f.filter for f in filters if f.is_wildcard]
    patterns: list[dict[str, Any]] = []
    for group in (plain, wild):
        chunk: list[Any] = []
        for item in group:
            candidate = [*chunk, item]
            if len(compact(with_filters(base, candidate))) <= max_chars:
                chunk = candidate
                continue
            if not chunk:
                raise PatternTooLarge(
                    f"the filter {compact(item)} alone makes an event pattern over "
                    f"{max_chars} characters"
                )
            patterns.append(with_filters(base, chunk))
            chunk = [item]
        if chunk:
            patterns.append(with_filters(base, chunk))
    return patterns


def has_wildcard(pattern: Any) -> bool:
    """Whether an event pattern (dict or JSON text) uses a wildcard filter."""
    if isinstance(pattern, str):
        try:
            pattern = json.loads(pattern)
        except ValueError:
            return False
    if isinstance(pattern, dict):
        return any(k == "wildcard" or has_wildcard(v) for k, v in pattern.items())
    if isinstance(pattern, list):
        return any(has_wildcard(v) for v in pattern)
    return False
