"""The desired state a governance document asks for, in Lake Formation's own terms.

A validated document becomes a :class:`DesiredState`: LF-Tags that must exist, tags
attached to resources, data cells filters, and permission grants and revokes keyed by
(principal, resource). Resources are kept as the exact dictionaries the Lake Formation API
takes (``{"Table": {...}}``) so that plans are readable and apply needs no translation;
:func:`resource_key` gives the canonical, comparable form used to diff against what
``ListPermissions`` returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Which permissions apply to which kind of resource (Lake Formation developer guide,
# "Lake Formation permissions reference").
DATABASE_PERMISSIONS = frozenset({"ALL", "ALTER", "DROP", "DESCRIBE", "CREATE_TABLE"})
TABLE_PERMISSIONS = frozenset({"ALL", "SELECT", "ALTER", "DROP", "DELETE", "INSERT", "DESCRIBE"})
COLUMN_PERMISSIONS = frozenset({"SELECT"})
DATA_CELLS_FILTER_PERMISSIONS = frozenset({"SELECT", "DESCRIBE", "DROP"})

Resource = dict[str, Any]

# How ListPermissions names "every table of the database" (the TableWildcard). Never a real
# table: the Data Catalog stores table names in lower case.
ALL_TABLES = "ALL_TABLES"


def resource_key(resource: Resource, catalog_id: str) -> str:
    """A canonical string for a Lake Formation resource, equal for equal resources.

    Fills in the default ``CatalogId``, sorts tag expressions, and folds the forms Lake
    Formation uses interchangeably: a ``TableWithColumns`` with an empty
    ``ColumnWildcard`` is the table itself (``ListPermissions`` reports SELECT on a
    table that way), and a table named ``ALL_TABLES`` is the ``TableWildcard`` (how it
    reports permissions on every table of a database, SELECT as ``TableWithColumns``).
    Tag keys and values are compared case-insensitively.
    """
    kind, body = next(iter(resource.items())) if len(resource) == 1 else ("?", resource)
    body = dict(body) if isinstance(body, dict) else {"value": body}
    if kind == "TableWithColumns":
        wildcard = body.get("ColumnWildcard")
        if isinstance(wildcard, dict) and not wildcard.get("ExcludedColumnNames"):
            kind = "Table"
            body = {k: v for k, v in body.items() if k not in ("ColumnWildcard", "ColumnNames")}
        else:
            if "ColumnNames" in body:
                body["ColumnNames"] = sorted(body["ColumnNames"])
            if isinstance(wildcard, dict):
                body["ColumnWildcard"] = {
                    "ExcludedColumnNames": sorted(wildcard.get("ExcludedColumnNames", []))
                }
    if kind == "Table" and ("TableWildcard" in body or body.get("Name") == ALL_TABLES):
        # ListPermissions names the wildcard ALL_TABLES, for SELECT as a TableWithColumns
        # with a ColumnWildcard and no TableWildcard key (folded into a Table above)
        body.pop("Name", None)
        body["TableWildcard"] = {}
    if kind == "DataCellsFilter":
        body.setdefault("TableCatalogId", catalog_id)
    elif kind == "Catalog":
        body.setdefault("Id", catalog_id)
    else:
        body.setdefault("CatalogId", catalog_id)
    if kind == "LFTagPolicy":
        body["Expression"] = sorted(
            (
                {
                    "TagKey": str(t.get("TagKey", "")).casefold(),
                    "TagValues": sorted({str(v).casefold() for v in t.get("TagValues", [])}),
                }
                for t in body.get("Expression", [])
            ),
            key=lambda t: t["TagKey"],
        )
    return json.dumps({kind: body}, sort_keys=True, separators=(",", ":"))


def database_resource(database: str, catalog_id: str) -> Resource:
    return {"Database": {"CatalogId": catalog_id, "Name": database}}


def table_resource(database: str, table: str, catalog_id: str) -> Resource:
    if table == "*":
        return {"Table": {"CatalogId": catalog_id, "DatabaseName": database, "TableWildcard": {}}}
    return {"Table": {"CatalogId": catalog_id, "DatabaseName": database, "Name": table}}


def columns_resource(
    database: str,
    table: str,
    catalog_id: str,
    *,
    columns: list[str] | None = None,
    excluded: list[str] | None = None,
) -> Resource:
    body: dict[str, Any] = {"CatalogId": catalog_id, "DatabaseName": database, "Name": table}
    if columns:
        body["ColumnNames"] = sorted(set(columns))
    else:
        body["ColumnWildcard"] = {"ExcludedColumnNames": sorted(set(excluded or []))}
    return {"TableWithColumns": body}


def data_cells_filter_resource(database: str, table: str, name: str, catalog_id: str) -> Resource:
    return {
        "DataCellsFilter": {
            "TableCatalogId": catalog_id,
            "DatabaseName": database,
            "TableName": table,
            "Name": name,
        }
    }


def tag_policy_resource(
    resource_type: str, expression: dict[str, list[str]], catalog_id: str
) -> Resource:
    return {
        "LFTagPolicy": {
            "CatalogId": catalog_id,
            "ResourceType": resource_type,
            "Expression": [
                {"TagKey": key, "TagValues": sorted(values)}
                for key, values in sorted(expression.items())
            ],
        }
    }


def data_location_resource(arn: str, catalog_id: str) -> Resource:
    return {"DataLocation": {"CatalogId": catalog_id, "ResourceArn": arn}}


def describe_resource(resource: Resource) -> str:
    """A short human name for a resource, for messages and CLI output."""
    kind, body = next(iter(resource.items()))
    if kind == "Database":
        return f"database {body['Name']}"
    if kind == "Table":
        name = "*" if "TableWildcard" in body else body.get("Name")
        return f"table {body['DatabaseName']}.{name}"
    if kind == "TableWithColumns":
        if "ColumnNames" in body:
            cols = ",".join(body["ColumnNames"])
        else:
            cols = "* except " + ",".join(body["ColumnWildcard"].get("ExcludedColumnNames", []))
        return f"columns {body['DatabaseName']}.{body['Name']}({cols})"
    if kind == "DataCellsFilter":
        return f"data cells filter {body['DatabaseName']}.{body['TableName']}/{body['Name']}"
    if kind == "LFTagPolicy":
        expr = " AND ".join(f"{t['TagKey']}={'|'.join(t['TagValues'])}" for t in body["Expression"])
        return f"{body['ResourceType'].lower()}s tagged {expr}"
    if kind == "DataLocation":
        return f"data location {body['ResourceArn']}"
    return json.dumps(resource, sort_keys=True)


@dataclass
class PermissionSet:
    """Permissions one principal should hold (or lose) on one resource."""

    principal: str
    resource: Resource
    permissions: set[str] = field(default_factory=set)
    grantable: set[str] = field(default_factory=set)
    sources: list[str] = field(default_factory=list)  # JSON paths of the entries asking for it


@dataclass
class TagAssignment:
    """LF-Tags (one value per key) to attach to one resource."""

    resource: Resource
    tags: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


@dataclass
class DataCellsFilterSpec:
    """A data cells filter as ``CreateDataCellsFilter`` takes it (``TableData``)."""

    table_data: dict[str, Any]
    source: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        d = self.table_data
        return (d["TableCatalogId"], d["DatabaseName"], d["TableName"], d["Name"])


@dataclass
class DesiredState:
    """Everything a set of governance documents asks of Lake Formation."""

    catalog_id: str
    tags: dict[str, set[str]] = field(default_factory=dict)
    assignments: dict[str, TagAssignment] = field(default_factory=dict)
    data_cells_filters: dict[tuple[str, str, str, str], DataCellsFilterSpec] = field(
        default_factory=dict
    )
    grants: dict[tuple[str, str], PermissionSet] = field(default_factory=dict)
    revokes: dict[tuple[str, str], PermissionSet] = field(default_factory=dict)

    def want_tag(self, key: str, values: list[str] | set[str]) -> None:
        self.tags.setdefault(key, set()).update(values)

    def add_permissions(
        self,
        *,
        revoke: bool,
        principal: str,
        resource: Resource,
        permissions: set[str],
        grantable: set[str],
        source: str,
    ) -> None:
        if not permissions:
            return
        target = self.revokes if revoke else self.grants
        key = (principal, resource_key(resource, self.catalog_id))
        entry = target.get(key)
        if entry is None:
            entry = target[key] = PermissionSet(principal, resource)
        entry.permissions |= permissions
        entry.grantable |= grantable & permissions
        if source not in entry.sources:
            entry.sources.append(source)

    def assign(self, resource: Resource, key: str, value: str, source: str) -> None:
        rkey = resource_key(resource, self.catalog_id)
        entry = self.assignments.get(rkey)
        if entry is None:
            entry = self.assignments[rkey] = TagAssignment(resource)
        entry.tags[key] = value
        if source not in entry.sources:
            entry.sources.append(source)

    def merge(self, other: DesiredState) -> None:
        """Fold ``other`` (a later document) into this one: its revokes win over our grants."""
        for k, v in other.tags.items():
            self.want_tag(k, v)
        for a in other.assignments.values():
            for tag_key, value in a.tags.items():
                self.assign(a.resource, tag_key, value, a.sources[0] if a.sources else "")
        self.data_cells_filters.update(other.data_cells_filters)
        for key, ps in other.grants.items():
            revoked = self.revokes.get(key)
            if revoked:
                revoked.permissions -= ps.permissions
                revoked.grantable -= ps.permissions
                if not revoked.permissions:
                    del self.revokes[key]
            for src in ps.sources:
                self.add_permissions(
                    revoke=False,
                    principal=ps.principal,
                    resource=ps.resource,
                    permissions=set(ps.permissions),
                    grantable=set(ps.grantable),
                    source=src,
                )
        for key, ps in other.revokes.items():
            granted = self.grants.get(key)
            if granted:
                granted.permissions -= ps.permissions
                granted.grantable -= ps.permissions
                if not granted.permissions:
                    del self.grants[key]
            for src in ps.sources:
                self.add_permissions(
                    revoke=True,
                    principal=ps.principal,
                    resource=ps.resource,
                    permissions=set(ps.permissions),
                    grantable=set(),
                    source=src,
                )

    def bound_to(self, catalog_id: str) -> DesiredState:
        """A copy whose resources name ``catalog_id`` where they named none (``""``)."""
        out = DesiredState(catalog_id=catalog_id)
        for k, v in self.tags.items():
            out.want_tag(k, v)
        for a in self.assignments.values():
            for tag_key, value in a.tags.items():
                for src in a.sources or [""]:
                    out.assign(_bind(a.resource, catalog_id), tag_key, value, src)
        for spec in self.data_cells_filters.values():
            data = dict(spec.table_data)
            data["TableCatalogId"] = data.get("TableCatalogId") or catalog_id
            bound = DataCellsFilterSpec(data, spec.source)
            out.data_cells_filters[bound.key] = bound
        for revoke, table in ((False, self.grants), (True, self.revokes)):
            for ps in table.values():
                for src in ps.sources or [""]:
                    out.add_permissions(
                        revoke=revoke,
                        principal=ps.principal,
                        resource=_bind(ps.resource, catalog_id),
                        permissions=set(ps.permissions),
                        grantable=set(ps.grantable),
                        source=src,
                    )
        return out


def _bind(resource: Resource, catalog_id: str) -> Resource:
    out: Resource = {}
    for kind, body in resource.items():
        body = dict(body)
        for field_name in ("CatalogId", "TableCatalogId"):
            if field_name in body and not body[field_name]:
                body[field_name] = catalog_id
        out[kind] = body
    return out
