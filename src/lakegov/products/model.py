"""A data product as the rest of the package sees it, built from a validated document.

Datasets are matched by key. A ``DatasetRefreshed`` event (``dataset``, ``database``,
``table``) matches every key in :func:`event_keys`:

* ``dataset:<dataset>``           a dependency written ``{"dataset": "<id>"}``
* ``db:<database>.<table>``       ``"layer.table"`` (the environment's database of that lake
                                  layer: ``<glue prefix><layer>``), or ``{"table", "layer"}``,
                                  or ``{"table", "database"}`` (a literal database name)
* ``table:<table>``               a bare ``"table"``: that table in any database

Prefer ``layer.table``: it is environment-neutral and cannot confuse the staging and the
formatted table of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RUNNERS = ("codebuild", "stepfunctions", "mwaa", "ecs", "local")
DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_OUTPUT_LAYER = "formatted"

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def duration_seconds(value: int | str | None) -> int | None:
    """Seconds of an integer or an ISO 8601 duration (``P1D``, ``PT6H``, ``PT30M``)."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    match = _DURATION.match(value)
    if not match or value in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {value!r}")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def rate_seconds(expression: str | None) -> int | None:
    """Seconds of ``rate(N unit)``."""
    if not expression:
        return None
    match = _RATE.match(expression.strip())
    if not match:
        raise ValueError(f"not a rate expression: {expression!r}")
    return int(match.group(1)) * _RATE_UNITS[match.group(2).rstrip("s")]


@dataclass(frozen=True)
class DatasetRef:
    """One dataset named in a product document (see the module docstring for the forms)."""

    table: str | None = None
    layer: str | None = None
    database: str | None = None
    dataset: str | None = None

    @classmethod
    def parse(cls, raw: str | Mapping[str, Any]) -> DatasetRef:
        if isinstance(raw, str):
            layer, _, table = raw.rpartition(".")
            return cls(table=table, layer=layer or None)
        return cls(
            table=raw.get("table"),
            layer=raw.get("layer"),
            database=raw.get("database"),
            dataset=raw.get("dataset"),
        )

    def resolved_database(self, glue_prefix: str) -> str | None:
        if self.database:
            return self.database
        if self.layer:
            return f"{glue_prefix}{self.layer}"
        return None

    def key(self, glue_prefix: str) -> str:
        """The one key a dependency is indexed under."""
        if self.table is None:
            return f"dataset:{self.dataset}"
        database = self.resolved_database(glue_prefix)
        if database:
            return f"db:{database}.{self.table}"
        return f"table:{self.table}"

    def describe(self) -> str:
        if self.table is None:
            return f"dataset {self.dataset}"
        where = self.database or (f"layer {self.layer}" if self.layer else "any database")
        return f"{self.table} ({where})"


def event_keys(dataset: str | None, database: str | None, table: str | None) -> list[str]:
    """Every key a DatasetRefreshed with these fields matches."""
    keys = []
    if dataset:
        keys.append(f"dataset:{dataset}")
    if database and table:
        keys.append(f"db:{database}.{table}")
    if table:
        keys.append(f"table:{table}")
    return keys


@dataclass(frozen=True)
class OutputDataset:
    """A dataset a product refreshes, with the fields of its DatasetRefreshed."""

    dataset: str
    database: str
    table: str

    def keys(self) -> list[str]:
        return event_keys(self.dataset, self.database, self.table)


@dataclass(frozen=True)
class Product:
    """A validated product document."""

    name: str
    depends_on: tuple[DatasetRef, ...]
    policy: str = "all"
    max_age_s: int | None = None
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    selector: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    command: str = "build"
    runner: str | None = None  # None: the deployment's default runner
    runner_settings: Mapping[str, Any] = field(default_factory=dict)
    schedule_s: int | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    refreshes: tuple[DatasetRef, ...] = ()
    document: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Product:
        """A Product from a document that passed the JSON Schema."""
        dbt = doc.get("dbt") or {}
        select = [*dbt.get("models", []), *(f"tag:{t}" for t in dbt.get("tags", []))]
        select += [s for s in dbt.get("select", []) if s not in select]
        runner = doc.get("runner") or {}
        return cls(
            name=str(doc["name"]),
            depends_on=tuple(DatasetRef.parse(d) for d in doc.get("depends_on", [])),
            policy=str(doc.get("policy", "all")),
            max_age_s=duration_seconds(doc.get("max_age")),
            select=tuple(select),
            exclude=tuple(dbt.get("exclude", [])),
            selector=dbt.get("selector"),
            vars=dict(dbt.get("vars") or {}),
            command=str(dbt.get("command", "build")),
            runner=runner.get("type"),
            runner_settings={k: v for k, v in runner.items() if k != "type"},
            schedule_s=rate_seconds(doc.get("schedule")),
            max_attempts=int((doc.get("retry") or {}).get("max_attempts", DEFAULT_MAX_ATTEMPTS)),
            refreshes=tuple(DatasetRef.parse(d) for d in doc.get("refreshes", [])),
            document=dict(doc),
        )

    def dependency_keys(self, glue_prefix: str) -> list[str]:
        return sorted({ref.key(glue_prefix) for ref in self.depends_on})

    def outputs(self, glue_prefix: str) -> list[OutputDataset]:
        """The datasets announced after a successful run (bare tables: the formatted layer)."""
        out = []
        for ref in self.refreshes:
            if ref.table is None:
                continue  # refused by validation: an output needs a table
            database = ref.resolved_database(glue_prefix) or f"{glue_prefix}{DEFAULT_OUTPUT_LAYER}"
            out.append(
                OutputDataset(
                    dataset=ref.dataset or f"{database}.{ref.table}",
                    database=database,
                    table=ref.table,
                )
            )
        return out

    def runner_name(self, default: str) -> str:
        return self.runner or default
