"""Running one Athena query to its end and reading all of its results.

The Athena client is passed in: with a role's credentials (``--as``), on AWS or on the
embedded runtime's endpoint alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lakegov.errors import LakegovError

_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class QueryTimedOut(LakegovError):
    """The query was still running when the caller stopped waiting (it was stopped)."""


@dataclass
class QueryOutcome:
    query_execution_id: str
    state: str
    reason: str = ""
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Athena type)
    rows: list[list[str | None]] = field(default_factory=list)
    statistics: dict[str, Any] = field(default_factory=dict)
    output_location: str = ""

    @property
    def succeeded(self) -> bool:
        return self.state == "SUCCEEDED"

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_execution_id": self.query_execution_id,
            "state": self.state,
            "reason": self.reason or None,
            "columns": [{"name": n, "type": t} for n, t in self.columns],
            "rows": self.rows,
            "data_scanned_bytes": self.statistics.get("DataScannedInBytes"),
            "engine_execution_ms": self.statistics.get("EngineExecutionTimeInMillis"),
            "output_location": self.output_location,
        }


def run_query(
    athena: Any,
    sql: str,
    *,
    database: str | None = None,
    workgroup: str | None = None,
    output_location: str | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 0.1,
) -> QueryOutcome:
    """Start ``sql``, wait for its end, and read every result row (the header row of a
    SELECT is not one of them: it gives ``columns``)."""
    request: dict[str, Any] = {"QueryString": sql}
    if database:
        request["QueryExecutionContext"] = {"Database": database}
    if workgroup:
        request["WorkGroup"] = workgroup
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    query_id = str(athena.start_query_execution(**request)["QueryExecutionId"])
    deadline = time.monotonic() + timeout_s
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution["Status"]
        if status["State"] in _DONE:
            break
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise QueryTimedOut(f"query {query_id} still {status['State']} after {timeout_s:.0f}s")
        time.sleep(poll_s)
        poll_s = min(poll_s * 1.5, 2.0)
    outcome = QueryOutcome(
        query_execution_id=query_id,
        state=status["State"],
        reason=str(status.get("StateChangeReason") or ""),
        statistics=dict(execution.get("Statistics") or {}),
        output_location=str((execution.get("ResultConfiguration") or {}).get("OutputLocation", "")),
    )
    if outcome.succeeded:
        _read_results(athena, outcome, header=execution.get("StatementType") == "DML")
    return outcome


def _read_results(athena: Any, outcome: QueryOutcome, *, header: bool) -> None:
    paginator = athena.get_paginator("get_query_results")
    first = True
    for page in paginator.paginate(QueryExecutionId=outcome.query_execution_id):
        result = page["ResultSet"]
        if first:
            info = result.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            outcome.columns = [(c["Name"], c["Type"]) for c in info]
        rows = [[d.get("VarCharValue") for d in r.get("Data", [])] for r in result["Rows"]]
        if first and header and rows and rows[0] == [n for n, _ in outcome.columns]:
            rows = rows[1:]
        outcome.rows.extend(rows)
        first = False


def render_table(outcome: QueryOutcome, *, null: str = "NULL") -> str:
    """Rows as an aligned text table, numbers right-aligned, and a one-line summary."""
    names = [n for n, _ in outcome.columns] or (["result"] if outcome.rows else [])
    numeric = [t in _NUMERIC for _, t in outcome.columns]
    cells = [[null if v is None else v for v in row] for row in outcome.rows]
    widths = [len(n) for n in names]
    for row in cells:
        for i, value in enumerate(row[: len(widths)]):
            widths[i] = max(widths[i], len(value))
    lines = []
    if names:
        lines.append("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        parts = []
        for i, value in enumerate(row[: len(widths)]):
            right = i < len(numeric) and numeric[i] and value != null
            parts.append(value.rjust(widths[i]) if right else value.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
    scanned = outcome.statistics.get("DataScannedInBytes")
    took = outcome.statistics.get("EngineExecutionTimeInMillis")
    summary = f"({len(outcome.rows)} row{'s' if len(outcome.rows) != 1 else ''}"
    if scanned is not None:
        summary += f", {_size(int(scanned))} scanned"
    if took is not None:
        summary += f", {int(took)} ms"
    lines.append(summary + ")")
    return "\n".join(lines)


_NUMERIC = frozenset(
    {"tinyint", "smallint", "integer", "int", "bigint", "double", "float", "real", "decimal"}
)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
