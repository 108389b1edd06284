"""Schema evolution against the catalog: which files a table accepts, and its new columns.

Pure logic (no AWS): given a table's columns and partition keys (or no table yet) and the
columns of each new file, in arrival order, decide per file with the dataset's policy
(``schema_changes`` of its ``datasets/`` document):

* ``additive`` (default) - additive changes are applied, breaking ones rejected;
* ``any``                - every change is applied (retyped columns take the file's type);
* ``none``               - any change is rejected.

A rejected file leaves the table unchanged and is not registered (its partitions would
not read under the table's schema). A different partition layout is always rejected:
a table's partition keys cannot change under existing partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lakegov.catalog.converted import ConvertedFile
from lakegov.schema import Column, SchemaDiff, TypeChange, change_allowed, diff_columns


@dataclass(frozen=True)
class Decision:
    file: ConvertedFile
    accepted: bool
    change: str  # none | additive | breaking
    diff: SchemaDiff
    reason: str = ""

    def schema_changed(self, database: str, detected_at: str) -> dict[str, Any] | None:
        """The ``SchemaChanged`` detail of this decision (None when nothing changed)."""
        if self.change == "none":
            return None
        return {
            "dataset": self.file.dataset,
            "database": database,
            "table": self.file.table,
            "change": self.change,
            "action": "applied" if self.accepted else "rejected",
            "policy": self.file.schema_policy,
            **self.diff.to_event(),
            "source_key": str(self.file.detail.get("key") or self.file.source),
            "schema_fingerprint": self.file.fingerprint,
            "reason": self.reason or self.diff.describe(),
            "source": "catalog",
            "detected_at": detected_at,
        }


@dataclass
class Evolution:
    """The outcome for one table: its columns afterwards and a decision per file."""

    columns: list[Column]
    partition_keys: tuple[str, ...]
    decisions: list[Decision] = field(default_factory=list)
    changed: bool = False  # columns differ from the table's (or the table is new)

    @property
    def accepted(self) -> list[ConvertedFile]:
        return [d.file for d in self.decisions if d.accepted]

    @property
    def rejected(self) -> list[Decision]:
        return [d for d in self.decisions if not d.accepted]


def data_columns(columns: Sequence[Column], partition_keys: Sequence[str]) -> list[Column]:
    """Columns without those named like a partition key (the folder is authoritative)."""
    keys = {k.lower() for k in partition_keys}
    return [c for c in columns if c.name.lower() not in keys]


def evolve(
    table_columns: Sequence[Column] | None,
    table_keys: Sequence[str] | None,
    files: Sequence[tuple[ConvertedFile, Sequence[Column]]],
) -> Evolution:
    """Fold ``files`` (with their columns) into the table, one decision per file."""
    columns = list(table_columns) if table_columns is not None else None
    keys = tuple(table_keys) if table_keys is not None else None
    decisions: list[Decision] = []
    changed = table_columns is None
    for file, raw_columns in files:
        file_columns = data_columns(raw_columns, file.partition_keys)
        if columns is None or keys is None:
            columns, keys = list(file_columns), file.partition_keys
            decisions.append(Decision(file, True, "none", SchemaDiff(merged=list(columns))))
            continue
        if file.partition_keys != keys:
            change = TypeChange("partition keys", ",".join(keys), ",".join(file.partition_keys))
            decisions.append(
                Decision(
                    file,
                    False,
                    "breaking",
                    SchemaDiff(broken=[change], merged=list(columns)),
                    reason=f"partition keys {list(file.partition_keys)} differ from the "
                    f"table's {list(keys)}",
                )
            )
            continue
        diff = diff_columns(columns, file_columns)
        kind = diff.kind
        policy = file.schema_policy
        if kind == "none":
            decisions.append(Decision(file, True, "none", diff))
            continue
        accepted = change_allowed(kind, policy)
        reason = diff.describe()
        if not accepted:
            reason = f"{kind} change rejected by policy {policy!r}: {reason}"
        decisions.append(Decision(file, accepted, kind, diff, reason))
        if accepted:
            columns = diff.retyped if kind == "breaking" else diff.merged
            changed = True
    return Evolution(columns or [], keys or (), decisions, changed)
