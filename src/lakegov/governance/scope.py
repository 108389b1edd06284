"""What lakegov governs, and what it never touches.

The drift check reports grants and LF-Tag assignments that no document in force asks for,
and reconciling revokes them; both only inside an explicit scope, so grants made elsewhere
in the catalog stay the business of whoever made them:

- **databases**: every database a document in force names as a whole (a grant or tag on
  the database, or on all its tables), and the stack's own databases;
- **tables**: every table a document in force names (by name, with columns or a filter);
- **LF-Tag expressions**: a grant on an expression whose every key is an LF-Tag the
  documents declare (lakegov owns those tags);
- **tag assignments**: on the databases and tables the documents name, for the tag keys
  the documents declare (tables lakegov only holds as part of a whole database keep the
  tags their builders gave them, e.g. the dbt job's).

Never revoked, whatever the documents say: grants to the stack's own roles (the settings
list them), to the data lake administrators (read from Lake Formation), and to
``IAM_ALLOWED_PRINCIPALS`` (the catalog's IAM-only compatibility mode, changed with the
data lake settings rather than by revoking); and grants on data locations or the catalog.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lakegov.governance.model import DesiredState, Resource

IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
_NEVER_GOVERNED_KINDS = frozenset({"DataLocation", "Catalog"})


@dataclass(frozen=True)
class GovernedScope:
    """The resources lakegov owns grants on, and the principals it never revokes from."""

    databases: frozenset[str]
    tables: frozenset[tuple[str, str]]
    tag_keys: frozenset[str]  # casefolded
    protected_principals: frozenset[str]
    named_databases: frozenset[str] = frozenset()  # named by documents (tag checks)

    def protects(self, principal: str) -> bool:
        return principal in self.protected_principals or principal == IAM_ALLOWED_PRINCIPALS

    def covers(self, resource_key: str) -> bool:
        """Whether a grant on ``resource_key`` (:func:`~lakegov.governance.model.resource_key`)
        is lakegov's to keep in line with the documents."""
        kind, body = next(iter(json.loads(resource_key).items()))
        if kind in _NEVER_GOVERNED_KINDS:
            return False
        if kind == "Database":
            return str(body.get("Name")) in self.databases
        if kind == "LFTagPolicy":
            keys = {str(t.get("TagKey", "")).casefold() for t in body.get("Expression") or []}
            return bool(keys) and keys <= self.tag_keys
        database = str(body.get("DatabaseName", ""))
        table = body.get("TableName") if kind == "DataCellsFilter" else body.get("Name")
        if database in self.databases:
            return True
        return table is not None and (database, str(table)) in self.tables

    def tag_targets(self) -> list[Resource]:
        """The databases and tables whose directly assigned tags are checked."""
        out: list[Resource] = [{"Database": {"Name": d}} for d in sorted(self.named_databases)]
        out += [{"Table": {"DatabaseName": d, "Name": t}} for d, t in sorted(self.tables)]
        return out


def _names(resource: Resource) -> tuple[str | None, str | None]:
    """(database, table) a resource names; table None for a whole database."""
    kind, body = next(iter(resource.items()))
    if kind == "Database":
        return str(body["Name"]), None
    if kind in ("Table", "TableWithColumns"):
        if "TableWildcard" in body:
            return str(body["DatabaseName"]), None
        return str(body["DatabaseName"]), str(body["Name"])
    if kind == "DataCellsFilter":
        return str(body["DatabaseName"]), str(body["TableName"])
    return None, None


def governed_scope(
    desired: DesiredState,
    *,
    stack_databases: Iterable[str] = (),
    protected_principals: Iterable[str] = (),
) -> GovernedScope:
    """The scope the documents in force (merged in ``desired``) and the stack define."""
    databases: set[str] = set()
    tables: set[tuple[str, str]] = set()
    resources = [p.resource for p in desired.grants.values()]
    resources += [p.resource for p in desired.revokes.values()]
    resources += [a.resource for a in desired.assignments.values()]
    resources += [
        {"DataCellsFilter": dict(spec.table_data)} for spec in desired.data_cells_filters.values()
    ]
    for resource in resources:
        if "DataCellsFilter" in resource and "TableName" not in resource["DataCellsFilter"]:
            continue
        database, table = _names(resource)
        if database is None:
            continue
        if table is None:
            databases.add(database)
        else:
            tables.add((database, table))
    tag_keys = {k.casefold() for k in desired.tags}
    for resource in resources:
        body: Any = resource.get("LFTagPolicy")
        if body:
            tag_keys |= {str(t["TagKey"]).casefold() for t in body.get("Expression") or []}
    return GovernedScope(
        databases=frozenset(databases | {d for d in stack_databases if d}),
        tables=frozenset(tables),
        tag_keys=frozenset(tag_keys),
        protected_principals=frozenset(p for p in protected_principals if p),
        named_databases=frozenset(databases),
    )
