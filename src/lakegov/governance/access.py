"""Who may read what: Lake Formation's permissions evaluated for one principal and table.

The local Athena asks :class:`AccessPolicy` before it reads a table; ``lakegov access``
asks it who can read a table, or what a principal can read. It reads Lake Formation's
state through the clients it is given (``ListPermissions``, ``GetDataLakeSettings``,
``GetResourceLFTags``, ``GetDataCellsFilter``, and Glue for a table's columns) on every
question, so a governance document applied a moment ago counts at once. It evaluates as
the Lake Formation developer guide describes:

- a **named grant** on the table, or on every table of its database (``TableWildcard``,
  which ``ListPermissions`` names ``ALL_TABLES``), gives every column and row;
- a **column grant** (``TableWithColumns``) gives its ``ColumnNames``, or every column but
  the ``ExcludedColumnNames`` of its ``ColumnWildcard``;
- an **LF-Tag policy** on tables gives a table whose effective tags match the expression
  (every key of the expression has one of its values; a table's tag overrides its
  database's for the same key), and within it the columns whose effective tags match (a
  column's tag overrides its table's): a column tagged out of the expression is not read;
  a column tagged into it is, even in a table that is not. LF-Tag policies on databases
  give database permissions, never table ones;
- a **data cells filter** gives its columns on the rows its row filter keeps
  (``AllRowsWildcard``: every row);
- ``ALL`` (and ``SUPER``) implies every table permission, SELECT and DESCRIBE included;
- any permission on a table lets the principal describe it (the Data Catalog shows a
  principal the tables it has permissions on), with the columns its grants give.

Several grants on one table add up, cell by cell, as in Lake Formation
(:mod:`lakegov.governance.table_grant`): a column is shown
on a row when some grant covering the column keeps the row. When that is not simply "these
columns on those rows", :attr:`TableGrant.cell_filters` lists the columns shown on fewer
rows than the row filter keeps, each with the predicate of the rows it shows on.

Principals: grants to an IAM role apply to its sessions (``arn:aws:sts::ACCOUNT:
assumed-role/NAME/SESSION`` is the role ``NAME``; a role's path is not in a session ARN, so
roles are matched by account and name). Grants to ``IAM_ALLOWED_PRINCIPALS`` apply to
every principal of the catalog's account (what "use only IAM access control" means; IAM
policies themselves are not evaluated here). Data lake administrators hold DESCRIBE on
every table, as on AWS, but no implicit SELECT: AWS lets them grant themselves anything
but grants them no data (:meth:`AccessPolicy.is_unrestricted` reports them). Principals of
another account, SAML and IAM Identity Center users and groups are refused with a reason
saying that they are not evaluated here: their access goes through grants made in their own
account (resource links) or through group membership, which a local catalog does not hold.
A principal of another account reading through a resource link is evaluated by
:func:`shared_table_access`, with an evaluator over each account's Lake Formation: its own
account's grants to it on the shared table, within what this catalog granted its account
(:meth:`AccessPolicy.account_access`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.errors import LakegovError
from lakegov.governance.current_state import HeldPermission, list_permissions
from lakegov.governance.model import TABLE_PERMISSIONS
from lakegov.governance.table_grant import GrantPart, TableGrant, combine, within

IAM_ALLOWED_PRINCIPALS = "IAM_ALLOWED_PRINCIPALS"
_IMPLIES_EVERYTHING = frozenset({"ALL", "SUPER"})
_ARN = re.compile(r"^arn:aws[a-z-]*:(?P<service>iam|sts)::(?P<account>\d{12}):(?P<rest>.+)$")


class AccessDenied(LakegovError):
    """The principal holds no ``permission`` on ``resource`` (or on some of its columns)."""

    def __init__(
        self,
        principal: str,
        permission: str,
        resource: str,
        missing_columns: Iterable[str] = (),
        reason: str = "",
    ) -> None:
        self.principal = principal
        self.permission = permission
        self.resource = resource
        self.missing_columns = tuple(sorted(missing_columns))
        self.reason = reason
        what = f"{permission} on {resource}"
        if self.missing_columns:
            what = f"{permission} on column(s) {', '.join(self.missing_columns)} of {resource}"
        message = f"Insufficient Lake Formation permission(s): {principal} has no {what}"
        super().__init__(message + (f" ({reason})" if reason else ""))


class TableNotFound(LakegovError):
    """The table is not in the Data Catalog."""


def role_arn(principal_arn: str) -> str:
    """The IAM role behind an STS assumed-role session ARN; any other ARN unchanged."""
    m = _ARN.match(principal_arn)
    if m and m["service"] == "sts" and m["rest"].startswith("assumed-role/"):
        name = m["rest"].split("/")[1]
        return f"arn:aws:iam::{m['account']}:role/{name}"
    return principal_arn


def principal_account(principal_arn: str) -> str:
    """The account of an IAM or STS principal ARN ("" for anything else)."""
    m = _ARN.match(principal_arn)
    return m["account"] if m else ""


def _identity(principal: str) -> tuple[str, str, str] | None:
    """(account, kind, name) of an IAM role or user ARN (a role's path dropped)."""
    m = _ARN.match(role_arn(principal))
    if not m or m["service"] != "iam":
        return None
    kind, _, path_and_name = m["rest"].partition("/")
    if kind not in ("role", "user") or not path_and_name:
        return None
    return (m["account"], kind, path_and_name.rsplit("/", 1)[-1])


@dataclass
class _Snapshot:
    """Lake Formation's state for one question, each part read at most once."""

    lf: Any
    glue: Any
    catalog_id: str
    held: list[HeldPermission] | None = None
    admins: frozenset[str] | None = None
    read_only_admins: frozenset[str] = frozenset()
    tables: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    column_tags: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)
    filters: dict[tuple[str, str, str], dict[str, Any] | None] = field(default_factory=dict)

    def permissions(self) -> list[HeldPermission]:
        if self.held is None:
            self.held = list(list_permissions(self.lf, catalog_id=self.catalog_id))
        return self.held

    def settings(self) -> None:
        if self.admins is not None:
            return
        resp = self.lf.get_data_lake_settings(CatalogId=self.catalog_id)
        settings = resp.get("DataLakeSettings") or {}

        def ids(key: str) -> frozenset[str]:
            return frozenset(
                str(p.get("DataLakePrincipalIdentifier"))
                for p in settings.get(key) or []
                if p.get("DataLakePrincipalIdentifier")
            )

        self.admins = ids("DataLakeAdmins")
        self.read_only_admins = ids("ReadOnlyAdmins")

    def columns(self, database: str, table: str) -> list[str]:
        key = (database, table)
        if key not in self.tables:
            try:
                found = self.glue.get_table(
                    CatalogId=self.catalog_id, DatabaseName=database, Name=table
                )["Table"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                    raise TableNotFound(
                        f"table {database}.{table} is not in the Data Catalog"
                    ) from exc
                raise
            cols = (found.get("StorageDescriptor") or {}).get("Columns") or []
            cols = [*cols, *(found.get("PartitionKeys") or [])]
            self.tables[key] = [str(c["Name"]).lower() for c in cols]
        return self.tables[key]

    def _assigned(self, resource: dict[str, Any]) -> dict[str, Any]:
        try:
            resp: dict[str, Any] = self.lf.get_resource_lf_tags(
                CatalogId=self.catalog_id, Resource=resource, ShowAssignedLFTags=True
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                return {}
            raise
        return resp

    def effective_tags(
        self, database: str, table: str
    ) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        """The table's effective tags and each column's (inheritance applied), casefolded."""
        key = (database, table)
        if key not in self.column_tags:
            db_key = f"db:{database}"
            if db_key not in self.tags:
                resp = self._assigned(
                    {"Database": {"CatalogId": self.catalog_id, "Name": database}}
                )
                self.tags[db_key] = _tag_map(resp.get("LFTagOnDatabase"))
            resource = {"CatalogId": self.catalog_id, "DatabaseName": database, "Name": table}
            table_tags = {
                **self.tags[db_key],
                **_tag_map(self._assigned({"Table": resource}).get("LFTagsOnTable")),
            }
            self.tags[f"table:{database}.{table}"] = table_tags
            columns = self.columns(database, table)
            per_column: dict[str, dict[str, str]] = {c: dict(table_tags) for c in columns}
            if columns:
                resp = self._assigned({"TableWithColumns": {**resource, "ColumnNames": columns}})
                for item in resp.get("LFTagsOnColumns") or []:
                    name = str(item.get("Name", "")).lower()
                    if name in per_column:
                        per_column[name].update(_tag_map(item.get("LFTags")))
            self.column_tags[key] = per_column
        return self.tags[f"table:{database}.{table}"], self.column_tags[key]

    def data_cells_filter(self, database: str, table: str, name: str) -> dict[str, Any] | None:
        key = (database, table, name)
        if key not in self.filters:
            try:
                resp = self.lf.get_data_cells_filter(
                    TableCatalogId=self.catalog_id,
                    DatabaseName=database,
                    TableName=table,
                    Name=name,
                )
                self.filters[key] = resp.get("DataCellsFilter") or None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "EntityNotFoundException":
                    raise
                self.filters[key] = None  # a grant on a filter since deleted gives nothing
        return self.filters[key]


def _tag_map(tags: list[dict[str, Any]] | None) -> dict[str, str]:
    return {
        str(t["TagKey"]).casefold(): str((t.get("TagValues") or [""])[0]).casefold()
        for t in tags or []
    }


def _matches(expression: list[dict[str, Any]], tags: dict[str, str]) -> bool:
    return all(
        tags.get(str(t["TagKey"]).casefold()) in {str(v).casefold() for v in t["TagValues"]}
        for t in expression
    )


class AccessPolicy:
    """Lake Formation's answer to "may this principal read this table, and what of it"."""

    def __init__(
        self,
        lakeformation: Any,
        glue: Any,
        *,
        catalog_id: str | None = None,
        reuse_reads: bool = False,
    ) -> None:
        """``reuse_reads``: answer every question of this instance from one read of each
        part of Lake Formation's state (one query's tables); otherwise each question reads
        afresh (so a grant made a moment ago counts at once)."""
        self.lakeformation = lakeformation
        self.glue = glue
        self.catalog_id = catalog_id
        self._reused: dict[str, _Snapshot] | None = {} if reuse_reads else None

    # -- questions --------------------------------------------------------------------
    def is_unrestricted(self, principal_arn: str) -> bool:
        """True for a data lake administrator (``GetDataLakeSettings``).

        On AWS an administrator may describe everything and grant anything, including
        to itself; it holds no implicit SELECT (``table_access`` grants it none).
        """
        snap = self._snapshot(principal_arn)
        if not snap.catalog_id:  # not an IAM ARN: never an administrator
            return False
        snap.settings()
        assert snap.admins is not None
        return self._is_one_of(principal_arn, snap.admins)

    def table_access(
        self, principal_arn: str, database: str, table: str, permission: str = "SELECT"
    ) -> TableGrant:
        """What ``principal_arn`` may read of ``database.table``; raises :class:`AccessDenied`
        when it holds ``permission`` on none of it, :class:`TableNotFound` for no table."""
        snap = self._snapshot(principal_arn)
        return self._table_access(snap, principal_arn, database.lower(), table.lower(), permission)

    def account_access(
        self, account: str, database: str, table: str, permission: str = "SELECT"
    ) -> TableGrant:
        """What another account was granted on a table of this catalog (a cross-account
        grant: its principals read within it, through grants made in their own account)."""
        database, table = database.lower(), table.lower()
        snap = self._snapshot(None)
        all_columns = snap.columns(database, table)
        parts = list(self._parts(snap, account, database, table, permission, all_columns))
        if not parts:
            raise AccessDenied(account, permission, f"{database}.{table}")
        return combine(parts, all_columns)

    def check_columns(
        self,
        principal_arn: str,
        database: str,
        table: str,
        columns: Iterable[str],
        permission: str = "SELECT",
    ) -> TableGrant:
        """``table_access``, and :class:`AccessDenied` naming the columns it does not give."""
        grant = self.table_access(principal_arn, database, table, permission)
        missing = grant.missing(columns)
        if missing:
            raise AccessDenied(principal_arn, permission, f"{database}.{table}", missing)
        return grant

    def principals_for_table(
        self, database: str, table: str, permission: str = "SELECT"
    ) -> dict[str, TableGrant]:
        """Every principal holding ``permission`` on the table, with what it may read.

        Principals are the grantees of Lake Formation's grants (``IAM_ALLOWED_PRINCIPALS``
        stands for every IAM principal of the account); administrators are listed only if
        something is granted to them.
        """
        database, table = database.lower(), table.lower()
        snap = self._snapshot(None)
        snap.columns(database, table)  # TableNotFound first
        out: dict[str, TableGrant] = {}
        for principal in sorted({h.principal for h in snap.permissions()}):
            try:
                out[principal] = self._table_access(snap, principal, database, table, permission)
            except AccessDenied:
                continue
        return out

    def unevaluated_principals(self) -> dict[str, str]:
        """Grantees this evaluator refuses (other accounts, SAML, IAM Identity Center,
        organisations), each with the reason: their access is decided elsewhere."""
        snap = self._snapshot(None)
        out: dict[str, str] = {}
        for grantee in sorted({h.principal for h in snap.permissions()}):
            reason = self._refusal(snap, grantee)
            if reason:
                out[grantee] = reason
        return out

    def tables_for_principal(
        self, principal_arn: str, permission: str = "SELECT"
    ) -> dict[tuple[str, str], TableGrant]:
        """Every table of the catalog ``principal_arn`` holds ``permission`` on."""
        snap = self._snapshot(principal_arn)
        out: dict[tuple[str, str], TableGrant] = {}
        for database, table in self._catalog_tables(snap):
            try:
                out[(database, table)] = self._table_access(
                    snap, principal_arn, database, table, permission
                )
            except (AccessDenied, TableNotFound):
                continue
        return out

    # -- evaluation -------------------------------------------------------------------
    def _snapshot(self, principal_arn: str | None) -> _Snapshot:
        catalog_id = self.catalog_id
        if catalog_id is None and principal_arn:
            catalog_id = principal_account(principal_arn)  # "": refused before any read
        if catalog_id is None:
            raise LakegovError("the catalog id is needed (AccessPolicy(..., catalog_id=...))")
        if self._reused is None:
            return _Snapshot(self.lakeformation, self.glue, catalog_id)
        if catalog_id not in self._reused:
            self._reused[catalog_id] = _Snapshot(self.lakeformation, self.glue, catalog_id)
        return self._reused[catalog_id]

    def _is_one_of(self, principal: str, grantees: Iterable[str]) -> bool:
        me = _identity(principal)
        for grantee in grantees:
            if grantee == principal or (me is not None and _identity(grantee) == me):
                return True
        return False

    def _applies(self, snap: _Snapshot, principal: str, grantee: str) -> bool:
        if grantee == IAM_ALLOWED_PRINCIPALS:
            me = _identity(principal)
            return principal == IAM_ALLOWED_PRINCIPALS or (
                me is not None and me[0] == snap.catalog_id
            )
        return self._is_one_of(principal, [grantee])

    def _refusal(self, snap: _Snapshot, principal: str) -> str:
        """Why a principal cannot be evaluated here ("" when it can)."""
        if principal == IAM_ALLOWED_PRINCIPALS:
            return ""
        me = _identity(principal)
        if re.fullmatch(r"\d{12}", principal):
            return (
                f"shared with account {principal}: its administrators grant it on in that "
                "account (resource links), which is not evaluated locally"
            )
        if me is None:
            return (
                "only IAM roles, their sessions and IAM users are evaluated locally; SAML and "
                "IAM Identity Center principals, accounts and organisations are not"
            )
        if me[0] != snap.catalog_id:
            return (
                f"cross-account access (account {me[0]} reading catalog {snap.catalog_id}) "
                "goes through resource links and is not evaluated locally"
            )
        return ""

    def _table_access(
        self, snap: _Snapshot, principal: str, database: str, table: str, permission: str
    ) -> TableGrant:
        name = f"{database}.{table}"
        refusal = self._refusal(snap, principal)
        if refusal:
            raise AccessDenied(principal, permission, name, reason=refusal)
        all_columns = snap.columns(database, table)
        if permission == "DESCRIBE":
            snap.settings()
            assert snap.admins is not None
            if self._is_one_of(principal, snap.admins | snap.read_only_admins):
                return TableGrant(None, None)
        if permission == "DESCRIBE":
            # any permission on a table shows it in the catalog (with the columns it gives)
            parts = [
                GrantPart(part.columns, None)
                for held in sorted(TABLE_PERMISSIONS - {"ALL"})
                for part in self._parts(snap, principal, database, table, held, all_columns)
            ]
        else:
            parts = list(self._parts(snap, principal, database, table, permission, all_columns))
        if not parts:
            raise AccessDenied(principal, permission, name)
        return combine(parts, all_columns)

    def _parts(
        self,
        snap: _Snapshot,
        principal: str,
        database: str,
        table: str,
        permission: str,
        all_columns: list[str],
    ) -> Iterator[GrantPart]:
        for held in snap.permissions():
            perms = held.permissions
            if perms & _IMPLIES_EVERYTHING:
                perms = perms | TABLE_PERMISSIONS
            if permission not in perms or not self._applies(snap, principal, held.principal):
                continue
            kind, body = next(iter(json.loads(held.resource).items()))
            if kind == "Table" and body.get("DatabaseName") == database:
                if "TableWildcard" in body or body.get("Name") == table:
                    yield GrantPart(None, None)
            elif kind == "TableWithColumns" and permission == "SELECT":
                if body.get("DatabaseName") != database or body.get("Name") != table:
                    continue
                yield GrantPart(_column_set(body, all_columns), None)
            elif kind == "DataCellsFilter" and permission == "SELECT":
                if body.get("DatabaseName") != database or body.get("TableName") != table:
                    continue
                found = snap.data_cells_filter(database, table, str(body.get("Name")))
                if found is not None:
                    row = found.get("RowFilter") or {}
                    expression = str(row.get("FilterExpression") or "").strip()
                    yield GrantPart(_column_set(found, all_columns), expression or None)
            elif kind == "LFTagPolicy" and body.get("ResourceType") == "TABLE":
                tag_expression: list[dict[str, Any]] = body.get("Expression") or []
                table_tags, column_tags = snap.effective_tags(database, table)
                if permission != "SELECT":
                    if _matches(tag_expression, table_tags):
                        yield GrantPart(None, None)
                    continue
                matching = [c for c in all_columns if _matches(tag_expression, column_tags[c])]
                if len(matching) == len(all_columns) and all_columns:
                    yield GrantPart(None, None)
                elif matching:
                    yield GrantPart(frozenset(matching), None)

    def _catalog_tables(self, snap: _Snapshot) -> Iterator[tuple[str, str]]:
        for page in self.glue.get_paginator("get_databases").paginate(CatalogId=snap.catalog_id):
            for db in page.get("DatabaseList") or []:
                for tpage in self.glue.get_paginator("get_tables").paginate(
                    CatalogId=snap.catalog_id, DatabaseName=db["Name"]
                ):
                    for t in tpage.get("TableList") or []:
                        yield str(db["Name"]).lower(), str(t["Name"]).lower()


def shared_table_access(
    consumer: AccessPolicy,
    producer: AccessPolicy,
    principal_arn: str,
    database: str,
    table: str,
    permission: str = "SELECT",
) -> TableGrant:
    """What ``principal_arn`` (of the consumer account) may read of the producer's table
    through a resource link: the consumer account's grants to it on the shared table
    (``consumer``: that account's Lake Formation), within what the producer granted the
    account (``producer``: the producer's). Raises :class:`AccessDenied` naming which
    side is missing."""
    account = principal_account(principal_arn)
    if not account:
        raise AccessDenied(
            principal_arn, permission, f"{database}.{table}", reason="not an IAM principal"
        )
    try:
        bound = producer.account_access(account, database, table, permission)
    except AccessDenied as exc:
        raise AccessDenied(
            principal_arn,
            permission,
            f"{database}.{table}",
            reason=f"account {account} holds no {permission} on it: not shared with it",
        ) from exc
    grant = consumer.table_access(principal_arn, database, table, permission)
    combined = within(grant, bound)
    if combined is None:
        raise AccessDenied(
            principal_arn,
            permission,
            f"{database}.{table}",
            reason=f"its columns are outside those shared with account {account}",
        )
    return combined


def _column_set(body: dict[str, Any], all_columns: list[str]) -> frozenset[str] | None:
    """The columns a ``TableWithColumns`` or a data cells filter names (None: every one)."""
    if body.get("ColumnNames"):
        return frozenset(str(c).lower() for c in body["ColumnNames"])
    excluded = {
        str(c).lower() for c in (body.get("ColumnWildcard") or {}).get("ExcludedColumnNames") or []
    }
    if not excluded:
        return None
    return frozenset(c for c in all_columns if c not in excluded)
