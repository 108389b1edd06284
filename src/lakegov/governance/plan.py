"""Planning: the desired state compared with Lake Formation, reduced to the changes.

Reads only (``ListPermissions``, ``ListLFTags``, ``GetResourceLFTags``,
``GetDataCellsFilter``, through :mod:`lakegov.governance.current_state`); writes nothing. A
document already in force plans no change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.governance.current_state import (
    CurrentState,
    assigned_tags,
    counted_read,
    data_lake_admins,
    read_state,
    resource_tags,
)
from lakegov.governance.model import (
    DataCellsFilterSpec,
    DesiredState,
    Resource,
    TagAssignment,
    describe_resource,
    resource_key,
)
from lakegov.governance.scope import GovernedScope
from lakegov.governance.validate import ValidatedDocument

ACTIONS = (
    "create_lf_tag",
    "add_lf_tag_values",
    "create_data_cells_filter",
    "update_data_cells_filter",
    "assign_lf_tags",
    "grant",
    "revoke",
    "remove_lf_tags",
)
UNREQUESTED = "(no document in force)"  # the source of a change undoing what none asks for


@dataclass
class Change:
    """One change to Lake Formation; ``to_dict`` is its JSON form in plans and results."""

    action: str
    principal: str | None = None
    resource: Resource | None = None
    permissions: list[str] = field(default_factory=list)
    permissions_with_grant_option: list[str] = field(default_factory=list)
    tag_key: str | None = None
    tag_values: list[str] = field(default_factory=list)
    lf_tags: list[dict[str, Any]] = field(default_factory=list)
    data_cells_filter: dict[str, Any] | None = None
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.principal is not None:
            out["principal"] = self.principal
        if self.resource is not None:
            out["resource"] = self.resource
            out["resource_name"] = describe_resource(self.resource)
        if self.action in ("grant", "revoke"):
            out["permissions"] = self.permissions
            out["permissions_with_grant_option"] = self.permissions_with_grant_option
        if self.tag_key is not None:
            out["tag_key"] = self.tag_key
            out["tag_values"] = self.tag_values
        if self.lf_tags:
            out["lf_tags"] = self.lf_tags
        if self.data_cells_filter is not None:
            out["data_cells_filter"] = self.data_cells_filter
        if self.sources:
            out["sources"] = self.sources
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Change:
        if data.get("action") not in ACTIONS:
            raise ValueError(f"unknown change action {data.get('action')!r}")
        return cls(
            action=data["action"],
            principal=data.get("principal"),
            resource=data.get("resource"),
            permissions=list(data.get("permissions", [])),
            permissions_with_grant_option=list(data.get("permissions_with_grant_option", [])),
            tag_key=data.get("tag_key"),
            tag_values=list(data.get("tag_values", [])),
            lf_tags=list(data.get("lf_tags", [])),
            data_cells_filter=data.get("data_cells_filter"),
            sources=list(data.get("sources", [])),
        )

    def describe(self) -> str:
        """One line for people (CLI output, logs)."""
        if self.action == "create_lf_tag":
            return f"create LF-Tag {self.tag_key} = {', '.join(self.tag_values)}"
        if self.action == "add_lf_tag_values":
            return f"add values to LF-Tag {self.tag_key}: {', '.join(self.tag_values)}"
        if self.action in ("create_data_cells_filter", "update_data_cells_filter"):
            d = self.data_cells_filter or {}
            verb = "create" if self.action.startswith("create") else "update"
            return (
                f"{verb} data cells filter {d.get('DatabaseName')}.{d.get('TableName')}/"
                f"{d.get('Name')}"
            )
        target = describe_resource(self.resource) if self.resource else "?"
        if self.action == "assign_lf_tags":
            tags = ", ".join(f"{t['TagKey']}={t['TagValues'][0]}" for t in self.lf_tags)
            return f"tag {target}: {tags}"
        if self.action == "remove_lf_tags":
            tags = ", ".join(f"{t['TagKey']}={t['TagValues'][0]}" for t in self.lf_tags)
            return f"untag {target}: {tags}"
        perms = ", ".join(self.permissions)
        grantable = (
            f" (grantable: {', '.join(self.permissions_with_grant_option)})"
            if self.permissions_with_grant_option
            else ""
        )
        verb = "grant" if self.action == "grant" else "revoke"
        prep = "to" if verb == "grant" else "from"
        return f"{verb} {perms}{grantable} on {target} {prep} {self.principal}"


@dataclass
class Plan:
    """The changes that make Lake Formation match a document; empty when in sync."""

    catalog_id: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things apply will likely trip on
    read_calls: int = 0

    @property
    def empty(self) -> bool:
        return not self.changes

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes]}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, catalog_id: str) -> Plan:
        return cls(catalog_id, [Change.from_dict(c) for c in data.get("changes", [])])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out


def _filter_body(data: dict[str, Any]) -> dict[str, Any]:
    """The parts of a data cells filter that define it (for comparison)."""
    row = data.get("RowFilter") or {}
    if "FilterExpression" in row:
        row_part: dict[str, Any] = {"FilterExpression": str(row["FilterExpression"]).strip()}
    else:
        row_part = {"AllRowsWildcard": {}}
    out: dict[str, Any] = {"RowFilter": row_part}
    if data.get("ColumnNames"):
        out["ColumnNames"] = sorted(c.lower() for c in data["ColumnNames"])
    else:
        wildcard = data.get("ColumnWildcard") or {}
        out["ColumnWildcard"] = {
            "ExcludedColumnNames": sorted(
                c.lower() for c in wildcard.get("ExcludedColumnNames") or []
            )
        }
    return out


def _plan_filter(
    state: CurrentState, lf: Any, spec: DataCellsFilterSpec, changes: list[Change]
) -> None:
    d = spec.table_data
    try:
        resp = counted_read(
            state,
            lf.get_data_cells_filter,
            TableCatalogId=d["TableCatalogId"],
            DatabaseName=d["DatabaseName"],
            TableName=d["TableName"],
            Name=d["Name"],
        )
    except ClientError as exc:
        if error_code(exc) != "EntityNotFoundException":
            raise
        changes.append(
            Change("create_data_cells_filter", data_cells_filter=d, sources=[spec.source])
        )
        return
    current = resp.get("DataCellsFilter") or {}
    if _filter_body(current) != _filter_body(d):
        changes.append(
            Change("update_data_cells_filter", data_cells_filter=d, sources=[spec.source])
        )


def _check_catalog(glue: Any, desired: DesiredState, notes: list[str]) -> None:
    """Notes for named databases and tables that do not exist (grants on them would fail)."""
    seen: set[tuple[str, str | None]] = set()
    resources = [p.resource for p in desired.grants.values()]
    resources += [a.resource for a in desired.assignments.values()]
    for resource in resources:
        kind, body = next(iter(resource.items()))
        if kind == "Database":
            target: tuple[str, str | None] = (body["Name"], None)
        elif kind in ("Table", "TableWithColumns") and "TableWildcard" not in body:
            target = (body["DatabaseName"], body["Name"])
        elif kind == "Table":
            target = (body["DatabaseName"], None)
        else:
            continue
        if target in seen:
            continue
        seen.add(target)
        try:
            if target[1] is None:
                glue.get_database(CatalogId=desired.catalog_id, Name=target[0])
            else:
                glue.get_table(CatalogId=desired.catalog_id, DatabaseName=target[0], Name=target[1])
        except ClientError as exc:
            if error_code(exc) != "EntityNotFoundException":
                raise
            what = f"table {target[0]}.{target[1]}" if target[1] else f"database {target[0]}"
            notes.append(f"{what} is not in the Data Catalog: changes on it will fail")


def _revoke_held(
    state: CurrentState,
    principal: str,
    rkey: str,
    permissions: set[str],
    *,
    sources: list[str],
) -> Change | None:
    """A revoke of ``permissions`` where they are held, naming the resource as listed."""
    perms, grantable = state.permissions.get((principal, rkey), (set(), set()))
    held = permissions & perms
    if not held:
        return None
    return Change(
        "revoke",
        principal=principal,
        resource=state.listed.get((principal, rkey)) or json.loads(rkey),
        permissions=sorted(held),
        permissions_with_grant_option=sorted(held & grantable),
        sources=sources,
    )


def _plan_unrequested(
    desired: DesiredState, state: CurrentState, lf: Any, scope: GovernedScope, notes: list[str]
) -> list[Change]:
    """Grants and tag assignments in the governed scope that no document in force asks for."""
    changes: list[Change] = []
    admins = data_lake_admins(state, lf)
    for (principal, rkey), (perms, _) in sorted(state.permissions.items()):
        if scope.protects(principal) or principal in admins or not scope.covers(rkey):
            continue
        wanted = desired.grants.get((principal, rkey))
        wanted_perms = wanted.permissions if wanted is not None else set()
        if "ALL" in wanted_perms:
            continue
        change = _revoke_held(state, principal, rkey, perms - wanted_perms, sources=[UNREQUESTED])
        if change is not None:
            changes.append(change)
    if not scope.tag_keys:
        return changes
    for target in scope.tag_targets():
        kind, body = next(iter(target.items()))
        resource = {kind: {"CatalogId": state.catalog_id, **body}}
        assignment = desired.assignments.get(resource_key(resource, state.catalog_id))
        wanted_tags = {k.casefold(): v for k, v in (assignment.tags if assignment else {}).items()}
        assigned = assigned_tags(state, lf, resource)
        extra = [
            t
            for t in assigned
            if str(t["TagKey"]).casefold() in scope.tag_keys
            and str(t["TagKey"]).casefold() not in wanted_tags
        ]
        if extra:
            changes.append(
                Change(
                    "remove_lf_tags",
                    resource=resource,
                    lf_tags=extra,
                    sources=[UNREQUESTED],
                )
            )
    return changes


def _plan_retired(
    retired: DesiredState, state: CurrentState, lf: Any, notes: list[str]
) -> list[Change]:
    """Revokes (and untagging) of what a replaced or deleted document alone asked for."""
    changes: list[Change] = []
    for (principal, rkey), unwanted in retired.grants.items():
        change = _revoke_held(
            state, principal, rkey, set(unwanted.permissions), sources=list(unwanted.sources)
        )
        if change is not None:
            changes.append(change)
    for assignment in retired.assignments.values():
        current = resource_tags(state, lf, assignment.resource, notes)
        body = assignment.resource.get("TableWithColumns")
        if body is None:
            _retire_tags(changes, assignment, current.get("", {}), None)
            continue
        for column in body.get("ColumnNames", []):
            _retire_tags(changes, assignment, current.get(column.lower(), {}), column)
    return changes


def _retire_tags(
    changes: list[Change],
    assignment: TagAssignment,
    assigned: dict[str, str],
    column: str | None,
) -> None:
    """Untag what the retired assignment set, where the resource still holds that value."""
    tags = [
        {"TagKey": k, "TagValues": [assigned[k.casefold()]]}
        for k, v in sorted(assignment.tags.items())
        if assigned.get(k.casefold(), "").casefold() == v.casefold()
    ]
    if not tags:
        return
    resource = assignment.resource
    if column is not None:
        body = dict(resource["TableWithColumns"])
        body["ColumnNames"] = [column]
        resource = {"TableWithColumns": body}
    changes.append(
        Change("remove_lf_tags", resource=resource, lf_tags=tags, sources=list(assignment.sources))
    )


def plan(
    desired: DesiredState | ValidatedDocument,
    lakeformation_client: Any,
    glue_client: Any = None,
    *,
    catalog_id: str,
    scope: GovernedScope | None = None,
    retired: DesiredState | None = None,
) -> Plan:
    """Compare ``desired`` with Lake Formation in ``catalog_id``; return the changes.

    ``glue_client`` is optional: given, the plan notes databases and tables that do not
    exist in the Data Catalog. ``scope`` (the drift check): also revoke the grants, and
    remove the tag assignments, that no document asks for inside the governed scope.
    ``retired`` (:func:`lakegov.governance.model.retired_state`): what a replaced or
    deleted document alone asked for, revoked where held. Raises :class:`RetryableError`
    when a read is throttled.
    """
    if isinstance(desired, ValidatedDocument):
        desired = desired.desired_state(catalog_id)
    elif desired.catalog_id != catalog_id:
        desired = desired.bound_to(catalog_id)
    if retired is not None and retired.catalog_id != catalog_id:
        retired = retired.bound_to(catalog_id)
    state = read_state(lakeformation_client, catalog_id=catalog_id)
    changes: list[Change] = []
    notes: list[str] = []
    if glue_client is not None:
        _check_catalog(glue_client, desired, notes)

    # LF-Tags and values
    for tag_key, values in sorted(desired.tags.items()):
        existing = state.tags.get(tag_key.casefold())
        if existing is None:
            changes.append(Change("create_lf_tag", tag_key=tag_key, tag_values=sorted(values)))
            continue
        known = {v.casefold() for v in existing[1]}
        new_values = sorted(v for v in values if v.casefold() not in known)
        if new_values:
            changes.append(Change("add_lf_tag_values", tag_key=existing[0], tag_values=new_values))

    # data cells filters
    for spec in desired.data_cells_filters.values():
        _plan_filter(state, lakeformation_client, spec, changes)

    # tag assignments
    for assignment in desired.assignments.values():
        current = resource_tags(state, lakeformation_client, assignment.resource, notes)
        kind, body = next(iter(assignment.resource.items()))
        targets = body.get("ColumnNames", [""]) if kind == "TableWithColumns" else [""]
        stale_targets = []
        stale_keys: set[str] = set()
        for target in targets:
            assigned = current.get(target, {})
            diff = {
                k
                for k, v in assignment.tags.items()
                if assigned.get(k.casefold(), "").casefold() != v.casefold()
            }
            if diff:
                stale_targets.append(target)
                stale_keys |= diff
        if not stale_keys:
            continue
        resource = assignment.resource
        if kind == "TableWithColumns":
            resource = {"TableWithColumns": {**body, "ColumnNames": stale_targets}}
        changes.append(
            Change(
                "assign_lf_tags",
                resource=resource,
                lf_tags=[
                    {"TagKey": k, "TagValues": [assignment.tags[k]]} for k in sorted(stale_keys)
                ],
                sources=list(assignment.sources),
            )
        )

    # grants: what is asked for and not held (a grant option counts separately)
    for gkey, wanted in desired.grants.items():
        perms, grantable = state.permissions.get(gkey, (set(), set()))
        missing = wanted.permissions - perms
        missing_grantable = wanted.grantable - grantable
        if missing or missing_grantable:
            changes.append(
                Change(
                    "grant",
                    principal=wanted.principal,
                    resource=wanted.resource,
                    permissions=sorted(missing | missing_grantable),
                    permissions_with_grant_option=sorted(missing_grantable),
                    sources=list(wanted.sources),
                )
            )

    # revokes: exactly the named permissions that are held, with their grant option
    for rkey, unwanted in desired.revokes.items():
        perms, grantable = state.permissions.get(rkey, (set(), set()))
        held = unwanted.permissions & perms
        if held:
            changes.append(
                Change(
                    "revoke",
                    principal=unwanted.principal,
                    resource=unwanted.resource,
                    permissions=sorted(held),
                    permissions_with_grant_option=sorted(unwanted.permissions & grantable),
                    sources=list(unwanted.sources),
                )
            )

    if retired is not None:
        changes += _plan_retired(retired, state, lakeformation_client, notes)
    if scope is not None:
        revoked = {
            (c.principal, resource_key(c.resource, catalog_id))
            for c in changes
            if c.resource and c.action == "revoke"
        }
        changes += [
            c
            for c in _plan_unrequested(desired, state, lakeformation_client, scope, notes)
            if c.action != "revoke"
            or (c.principal, resource_key(c.resource or {}, catalog_id)) not in revoked
        ]
    return Plan(catalog_id, changes, notes, state.read_calls)
