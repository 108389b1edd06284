"""The sections of a governance envelope beside its entries: LF-Tags it declares, tag
assignments to databases, tables and columns, and data cells filters.

Part of :func:`lakegov.governance.validate.validate`; each check adds issues and desired
state to the :class:`~lakegov.governance.checks.Checks` it is given.
"""

from __future__ import annotations

from typing import Any

from lakegov.governance.checks import Checks
from lakegov.governance.model import (
    DataCellsFilterSpec,
    Resource,
    columns_resource,
    database_resource,
    describe_resource,
    table_resource,
)


def check_envelope(c: Checks, doc: dict[str, Any]) -> None:
    """The envelope's own sections: LF-Tags declared, tag assignments, data cells filters."""
    for i, tag in enumerate(doc.get("lf_tags", [])):
        key = c.tag_key(tag["TagKey"], f"$.lf_tags[{i}].TagKey")
        values = [
            c.tag_value(v, f"$.lf_tags[{i}].TagValues[{j}]") for j, v in enumerate(tag["TagValues"])
        ]
        if key is not None and all(v is not None for v in values):
            c.desired.want_tag(key, [v for v in values if v is not None])
    for i, a in enumerate(doc.get("assignments", [])):
        _assignment(c, a, f"$.assignments[{i}]")
    seen: set[tuple[str, str, str]] = set()
    for i, f in enumerate(doc.get("data_cells_filters", [])):
        _data_cells_filter(c, f, f"$.data_cells_filters[{i}]", seen)


def _assignment(c: Checks, a: dict[str, Any], path: str) -> None:
    db = c.database(a["Database"], f"{path}.Database")
    if db is None:
        return
    resource: Resource
    if "Table" in a:
        if a["Table"].strip() == "*":
            c.error(
                f"{path}.Table",
                "expected a named table: LF-Tags are assigned to "
                "one table at a time (assign to the database to "
                "cover all its tables)",
                a["Table"],
            )
            return
        table = c.glue_name(a["Table"], f"{path}.Table", "table name")
        if table is None:
            return
        if "Columns" in a:
            cols = c.columns(a["Columns"], f"{path}.Columns")
            if cols is None:
                return
            resource = columns_resource(db, table, c.catalog_id, columns=cols)
        else:
            resource = table_resource(db, table, c.catalog_id)
    else:
        if "Columns" in a:
            c.error(path, "expected a Table for Columns")
            return
        resource = database_resource(db, c.catalog_id)
    seen: set[str] = set()
    for k, tag in enumerate(a["lf_tags"]):
        tpath = f"{path}.lf_tags[{k}]"
        key = c.tag_key(tag["TagKey"], f"{tpath}.TagKey")
        value = c.tag_value(tag["TagValues"][0], f"{tpath}.TagValues[0]")
        if key is None or value is None:
            continue
        if key in seen:
            c.error(
                f"{tpath}.TagKey",
                f"LF-Tag key {key!r} is assigned twice to "
                f"{describe_resource(resource)}; a resource takes "
                "one value per key",
                tag["TagKey"],
            )
            continue
        if value == "*":
            c.error(f"{tpath}.TagValues[0]", "expected a tag value, not '*'", value)
            continue
        seen.add(key)
        c.desired.want_tag(key, [value])
        c.desired.assign(resource, key, value, tpath)


def _data_cells_filter(
    c: Checks, f: dict[str, Any], path: str, seen: set[tuple[str, str, str]]
) -> None:
    db = c.database(f["Database"], f"{path}.Database")
    table = c.glue_name(f["Table"], f"{path}.Table", "table name")
    name = c._trimmed(f["Name"], f"{path}.Name", "data cells filter name")
    if db is None or table is None or name is None:
        return
    if (db, table, name) in seen:
        c.error(
            f"{path}.Name",
            f"data cells filter {name!r} on {db}.{table} is declared "
            "twice; expected unique names per table",
            f["Name"],
        )
        return
    seen.add((db, table, name))
    if "Columns" in f and "ExcludedColumns" in f:
        c.error(path, "expected Columns or ExcludedColumns, not both")
        return
    data: dict[str, Any] = {
        "TableCatalogId": c.catalog_id,
        "DatabaseName": db,
        "TableName": table,
        "Name": name,
        "RowFilter": (
            {"FilterExpression": f["RowFilter"].strip()}
            if "RowFilter" in f
            else {"AllRowsWildcard": {}}
        ),
    }
    if "Columns" in f:
        cols = c.columns(f["Columns"], f"{path}.Columns")
        if cols is None:
            return
        data["ColumnNames"] = sorted(set(cols))
    else:
        excluded = c.columns(f.get("ExcludedColumns", []), f"{path}.ExcludedColumns")
        if excluded is None:
            return
        data["ColumnWildcard"] = {"ExcludedColumnNames": sorted(set(excluded))}
    spec = DataCellsFilterSpec(data, path)
    c.desired.data_cells_filters[spec.key] = spec
