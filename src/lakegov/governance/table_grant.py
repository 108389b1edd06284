"""What a principal may read of one table, and how grants on it add up.

:class:`TableGrant` is the answer :class:`~lakegov.governance.access.AccessPolicy` gives:
columns, rows, and the cells between. Several grants on one table add up cell by cell, as in
Lake Formation (:func:`combine`: a column is shown on a row when some grant covering the
column keeps the row); a grant within another one's bound gives what both give
(:func:`within`: a consumer account's grant inside what the producer shared). Pure: no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableGrant:
    """What a principal may read of one table.

    ``columns``: the columns it may read (lower case), ``None`` for every column.
    ``row_filter``: a SQL predicate (a data cells filter's ``FilterExpression``, or several
    joined by ``OR``) keeping the rows it may read; ``None`` for every row.
    ``cell_filters``: ``(column, predicate)`` pairs for columns of ``columns`` it may read
    only on the rows where ``predicate`` holds (cell-level security, from several grants
    with different columns and rows): an engine must show them as NULL on the other rows
    (``CASE WHEN predicate THEN column END``). Empty in the usual cases.
    """

    columns: frozenset[str] | None
    row_filter: str | None
    cell_filters: tuple[tuple[str, str], ...] = ()

    def allows(self, column: str) -> bool:
        """True when the column is readable (on some rows at least: see ``cell_filters``)."""
        return self.columns is None or column.lower() in self.columns

    def missing(self, columns: Iterable[str]) -> list[str]:
        """The columns of ``columns`` this grant does not give, in order."""
        return [c for c in columns if not self.allows(c)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableGrant:
        columns = data.get("columns")
        return cls(
            None if columns is None else frozenset(columns),
            data.get("row_filter"),
            tuple((c["column"], c["predicate"]) for c in data.get("cell_filters", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "columns": None if self.columns is None else sorted(self.columns),
            "row_filter": self.row_filter,
        }
        if self.cell_filters:
            out["cell_filters"] = [{"column": c, "predicate": p} for c, p in self.cell_filters]
        return out


@dataclass
class GrantPart:
    """One grant's contribution to a table: columns (None: all) on rows (None: all)."""

    columns: frozenset[str] | None
    row_filter: str | None


def _joined(predicates: Iterable[str], operator: str) -> str:
    unique = sorted(set(predicates))
    return unique[0] if len(unique) == 1 else f" {operator} ".join(f"({p})" for p in unique)


def _or(predicates: Iterable[str]) -> str:
    return _joined(predicates, "OR")


def _and(predicates: Iterable[str]) -> str:
    return _joined(predicates, "AND")


def within(grant: TableGrant, bound: TableGrant) -> TableGrant | None:
    """What both give: a principal's ``grant`` inside the ``bound`` another grant sets (a
    consumer account's grant to its role on a shared table, within what the producer
    granted the account). None when they share no column."""
    if grant.columns is None:
        columns = bound.columns
    elif bound.columns is None:
        columns = grant.columns
    else:
        columns = grant.columns & bound.columns
    if columns is not None and not columns:
        return None
    filters = [f for f in (grant.row_filter, bound.row_filter) if f]
    row_filter = _and(filters) if filters else None
    cells: dict[str, list[str]] = {}
    for column, predicate in (*grant.cell_filters, *bound.cell_filters):
        cells.setdefault(column, []).append(predicate)
    return TableGrant(
        columns,
        row_filter,
        tuple((c, _and(p)) for c, p in sorted(cells.items()) if columns is None or c in columns),
    )


def combine(parts: list[GrantPart], all_columns: list[str]) -> TableGrant:
    """Grants on one table add up cell by cell (a column shows where a grant covering it
    keeps the row)."""
    every_row = any(p.row_filter is None for p in parts)
    row_filter = None if every_row else _or(p.row_filter for p in parts if p.row_filter)
    columns: frozenset[str] | None
    if any(p.columns is None for p in parts):
        columns = None
    else:
        columns = frozenset().union(*(p.columns or frozenset() for p in parts))
    cell_filters: list[tuple[str, str]] = []
    if len(parts) > 1:  # one grant: its columns on its rows, nothing finer
        for column in sorted(columns if columns is not None else all_columns):
            covering = [p for p in parts if p.columns is None or column in p.columns]
            if any(p.row_filter is None for p in covering):
                condition = None
            else:
                condition = _or(p.row_filter for p in covering if p.row_filter)
            if condition != row_filter and condition is not None:
                cell_filters.append((column, condition))
    return TableGrant(columns, row_filter, tuple(cell_filters))
