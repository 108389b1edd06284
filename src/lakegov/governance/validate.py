"""Validating governance documents: JSON Schema first, then the rules a schema cannot say.

Nothing here talks to AWS. :func:`validate` returns a :class:`ValidatedDocument` (with the
warnings, e.g. stray spaces that were trimmed) or raises :class:`InvalidDocument` listing
every error, each with its JSON path, the offending value and what was expected. Every
entry is checked before anything is applied, so one bad entry refuses the whole file.

This module walks the document's structure (shapes, entries, permissions, resources,
conflicts); the checks of single values (names, tags, principals) are
:mod:`lakegov.governance.checks`, the envelope's other sections
:mod:`lakegov.governance.envelope`, the guardrails :mod:`lakegov.governance.guardrails`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lakegov.errors import InvalidDocument, ValidationIssue
from lakegov.governance.checks import PARTITION, WARNING, Checks
from lakegov.governance.envelope import check_envelope
from lakegov.governance.guardrails import Guardrails
from lakegov.governance.model import (
    COLUMN_PERMISSIONS,
    DATA_CELLS_FILTER_PERMISSIONS,
    DATABASE_PERMISSIONS,
    TABLE_PERMISSIONS,
    DesiredState,
    Resource,
    columns_resource,
    data_cells_filter_resource,
    data_location_resource,
    database_resource,
    describe_resource,
    table_resource,
    tag_policy_resource,
)
from lakegov.jsonschemas import json_type, load_schema, path_str, schema_issues

SCHEMA_NAME = "governance.schema.json"
MAX_DEPTH = 32  # the deepest valid document is 5 levels; jsonschema recurses per level

_S3_LOCATION = re.compile(rf"arn:{PARTITION}:s3:::[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9](?:/.*)?")


# an envelope's fields that ask for nothing to be done
ENVELOPE_NOTES = frozenset({"entries", "version", "description"})


@dataclass
class ValidatedDocument:
    """A document that passed validation: its desired state and any warnings."""

    source: str
    desired: DesiredState
    warnings: list[ValidationIssue] = field(default_factory=list)
    entry_count: int = 0

    def desired_state(self, catalog_id: str) -> DesiredState:
        """The desired state with resources in catalog ``catalog_id``."""
        return self.desired.bound_to(catalog_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "entries": self.entry_count,
            "warnings": [w.to_dict() for w in self.warnings],
        }


def parse_document(data: bytes | str, *, source: str = "") -> Any:
    """JSON text -> Python value; unreadable input raises :class:`InvalidDocument` at ``$``."""
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as exc:
        issue = ValidationIssue("$", f"expected UTF-8 JSON text: {exc.reason} at byte {exc.start}")
        raise InvalidDocument([issue], source) from exc
    except json.JSONDecodeError as exc:
        issue = ValidationIssue(
            "$", f"expected JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        )
        raise InvalidDocument([issue], source) from exc
    except RecursionError as exc:
        issue = ValidationIssue("$", "expected JSON nested less deeply (parser limit reached)")
        raise InvalidDocument([issue], source) from exc


def validate(
    document: Any,
    *,
    source: str = "",
    guardrails: Guardrails | None = None,
    catalog_id: str = "",
) -> ValidatedDocument:
    """Check ``document`` (parsed JSON) fully; raise :class:`InvalidDocument` on any error.

    Errors and warnings carry JSON paths like ``$[1].named_data_catalog[0].Database``.
    ``catalog_id`` may stay empty offline; :meth:`ValidatedDocument.desired_state` binds it.
    """
    checker = _Checker(guardrails or Guardrails(), catalog_id)
    checker.check(document)
    errors = [i for i in checker.issues if i.severity != WARNING]
    if errors:
        raise InvalidDocument(checker.issues, source)
    return ValidatedDocument(
        source=source,
        desired=checker.desired,
        warnings=checker.issues,
        entry_count=checker.entry_count,
    )


def load_and_validate(
    data: bytes | str,
    *,
    source: str = "",
    guardrails: Guardrails | None = None,
    catalog_id: str = "",
) -> ValidatedDocument:
    """:func:`parse_document` then :func:`validate` (what the S3 handler and CLI call)."""
    return validate(
        parse_document(data, source=source),
        source=source,
        guardrails=guardrails,
        catalog_id=catalog_id,
    )


# -- JSON Schema layer ------------------------------------------------------------------


def governance_schema() -> dict[str, Any]:
    return load_schema(SCHEMA_NAME)


def _schema_issues(
    definition: str, instance: Any, prefix: list[str | int]
) -> list[ValidationIssue]:
    return schema_issues(SCHEMA_NAME, instance, definition=definition, prefix=prefix)


def _shape(document: Any) -> str:
    if isinstance(document, list):
        return "entryList"
    if isinstance(document, dict) and ("version" in document or "entries" in document):
        return "envelope"
    return "entry"


def _too_deep(document: Any, limit: int) -> list[str | int] | None:
    """Path of the first value nested deeper than ``limit``, found without recursion."""
    stack: list[tuple[Any, list[str | int]]] = [(document, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > limit:
            return path[:limit]
        if isinstance(value, dict):
            stack.extend((v, [*path, str(k)]) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(value))
    return None


# -- semantic layer ---------------------------------------------------------------------


class _Checker(Checks):
    """Walks a document once, collecting issues and building the desired state."""

    def __init__(self, guardrails: Guardrails, catalog_id: str) -> None:
        super().__init__(guardrails, catalog_id)
        self.entry_count = 0
        self._tperms_listed = False
        self._dperms_listed = False

    # document shapes
    def check(self, document: Any) -> None:
        deep = _too_deep(document, MAX_DEPTH)
        if deep is not None:
            self.error(
                path_str(deep),
                f"expected at most {MAX_DEPTH} levels of nesting (no governance document "
                "needs more)",
            )
            return
        shape = _shape(document)
        if shape == "entryList":
            self.check_entries(document, [])
        elif shape == "envelope":
            top = {k: v for k, v in document.items() if k not in ("entries",)}
            top_issues = _schema_issues("envelope", top, [])
            self.issues.extend(top_issues)
            entries = document.get("entries", [])
            if not isinstance(entries, list):
                self.error("$.entries", f"expected array, got {json_type(entries)}", entries)
            else:
                # tags declared, assigned or filters defined: something to do without entries
                acts = any(v for k, v in document.items() if k not in ENVELOPE_NOTES)
                self.check_entries(entries, ["entries"], alone=not acts)
            if not top_issues:
                check_envelope(self, document)
        elif isinstance(document, dict):
            self.check_entry(document, [])
            self.entry_count = 1
        else:
            self.error(
                "$",
                f"expected a list of entries or an object, got {json_type(document)}",
                document,
            )
        if not any(i.severity != WARNING for i in self.issues):
            self.check_conflicts()

    def check_entries(
        self, entries: list[Any], prefix: list[str | int], *, alone: bool = True
    ) -> None:
        """``alone``: the entries are all the document asks for."""
        self.entry_count = len(entries)
        if not entries and alone:
            self.warn(path_str(prefix), "the document has no entries: nothing to do")
        for i, entry in enumerate(entries):
            self.check_entry(entry, [*prefix, i])

    def check_entry(self, entry: Any, prefix: list[str | int]) -> None:
        schema_issues = _schema_issues("entry", entry, prefix)
        at = path_str(prefix)
        if schema_issues:
            self.issues.extend(schema_issues)
            # the principal too, when its own field is well formed: every error at once
            flagged = {i.path for i in schema_issues}
            for name in ("role_arn", "principal"):
                value = entry.get(name) if isinstance(entry, dict) else None
                path = f"{at}.{name}"
                if isinstance(value, str) and not any(
                    f == path or f.startswith((f"{path}.", f"{path}[")) for f in flagged
                ):
                    self.principal(value, path)
            return
        revoke = entry["access_type"] == "REVOKE"

        # principal
        if "role_arn" in entry and "principal" in entry:
            self.error(at, "expected role_arn or principal, not both", None)
            return
        principal: str | None
        if "role_arn" in entry:
            principal = self.principal(entry["role_arn"], f"{at}.role_arn")
        elif "principal" in entry:
            principal = self.principal(entry["principal"], f"{at}.principal")
        else:
            self.error(at, "missing required field 'role_arn' (or 'principal')")
            return

        # permissions
        tperms = self.permissions(
            entry.get("table_permissions", []),
            f"{at}.table_permissions",
            TABLE_PERMISSIONS,
            "table",
            revoke,
        )
        dperms = self.permissions(
            entry.get("database_permissions", []),
            f"{at}.database_permissions",
            DATABASE_PERMISSIONS,
            "database",
            revoke,
        )
        grantable = self.grant_option(entry, at, revoke, tperms | dperms)
        # permissions listed but refused above: do not also report them as missing
        self._tperms_listed = bool(entry.get("table_permissions"))
        self._dperms_listed = bool(entry.get("database_permissions"))

        named = entry.get("named_data_catalog", [])
        lf_tags = entry.get("lf_tags", [])
        locations = entry.get("data_locations", [])
        if not (named or lf_tags or locations):
            self.error(
                at,
                "the entry names no resource: expected lf_tags, named_data_catalog or "
                "data_locations to list at least one",
            )
            return

        def add(resource: Resource, perms: set[str], path: str) -> None:
            if principal is None:  # already reported; keep checking the rest
                return
            self.desired.add_permissions(
                revoke=revoke,
                principal=principal,
                resource=resource,
                permissions=perms,
                grantable=grantable & perms,
                source=path,
            )

        if lf_tags:
            expression = self.expression(lf_tags, f"{at}.lf_tags", create=not revoke)
            if not (tperms or dperms):
                if not (self._tperms_listed or self._dperms_listed):
                    self.error(
                        f"{at}.lf_tags",
                        "expected table_permissions or database_permissions to grant on this "
                        "LF-Tag expression",
                    )
            elif expression is not None:
                if tperms:
                    add(tag_policy_resource("TABLE", expression, self.catalog_id), tperms, at)
                if dperms:
                    add(tag_policy_resource("DATABASE", expression, self.catalog_id), dperms, at)

        for j, item in enumerate(named):
            self.named_item(item, f"{at}.named_data_catalog[{j}]", tperms, dperms, add)

        for j, loc in enumerate(locations):
            lpath = f"{at}.data_locations[{j}]"
            arn = self._trimmed(loc, lpath, "S3 location ARN")
            if arn is None:
                continue
            if not _S3_LOCATION.fullmatch(arn):
                self.error(
                    lpath, "expected an S3 location ARN like arn:aws:s3:::bucket/prefix", loc
                )
                continue
            perm = "DATA_LOCATION_ACCESS"
            if not revoke and self.needs_allow(perm):
                self.error(
                    lpath,
                    f"granting {perm} needs an explicit allow in the guardrails "
                    "(allowed_permissions)",
                    loc,
                )
                continue
            add(data_location_resource(arn, self.catalog_id), {perm}, lpath)

    def permissions(
        self, perms: list[str], path: str, valid: frozenset[str], kind: str, revoke: bool
    ) -> set[str]:
        out = set()
        for i, perm in enumerate(perms):
            p = f"{path}[{i}]"
            if perm not in valid:
                if perm == "DATA_LOCATION_ACCESS":
                    hint = "it applies to S3 locations: list them in data_locations"
                elif perm == "CREATE_DATABASE":
                    hint = "it applies to the catalog, which governance documents do not manage"
                elif kind == "table" and perm in DATABASE_PERMISSIONS:
                    hint = "it is a database permission: put it in database_permissions"
                elif kind == "database" and perm in TABLE_PERMISSIONS:
                    hint = "it is a table permission: put it in table_permissions"
                else:
                    hint = ""
                self.error(
                    p,
                    f"{perm} is not a {kind} permission ({hint}); expected one of "
                    f"{', '.join(sorted(valid))}",
                    perm,
                )
                continue
            if not revoke and self.needs_allow(perm):
                self.error(
                    p,
                    f"granting {perm} needs an explicit allow in the guardrails "
                    "(allowed_permissions); grant the specific permissions instead",
                    perm,
                )
                continue
            out.add(perm)
        return out

    def grant_option(
        self, entry: dict[str, Any], at: str, revoke: bool, perms: set[str]
    ) -> set[str]:
        option = entry.get("grant_option", False)
        if option is False or option == []:
            return set()
        path = f"{at}.grant_option"
        if revoke:
            self.error(
                path,
                "grant_option applies to GRANT entries only (a REVOKE removes the "
                "permissions it names together with their grant option)",
                option,
            )
            return set()
        if not self.g.allow_grant_option:
            self.error(path, "grant options are not allowed by the guardrails", option)
            return set()
        if option is True:
            return set(perms)
        out = set()
        for i, perm in enumerate(option):
            if perm not in perms:
                self.error(
                    f"{path}[{i}]",
                    f"{perm} is not granted by this entry; expected one "
                    f"of {', '.join(sorted(perms)) or '(none)'}",
                    perm,
                )
            else:
                out.add(perm)
        return out

    def expression(
        self, lf_tags: list[dict[str, Any]], path: str, *, create: bool
    ) -> dict[str, list[str]] | None:
        out: dict[str, list[str]] = {}
        ok = True
        for k, tag in enumerate(lf_tags):
            tpath = f"{path}[{k}]"
            key = self.tag_key(tag["TagKey"], f"{tpath}.TagKey")
            values = []
            for v, raw in enumerate(tag["TagValues"]):
                val = self.tag_value(raw, f"{tpath}.TagValues[{v}]")
                if val is None:
                    ok = False
                elif val not in values:
                    values.append(val)
            if key is None:
                ok = False
                continue
            if key in out:
                self.error(
                    f"{tpath}.TagKey",
                    f"LF-Tag key {key!r} appears twice in this expression; expected each key once",
                    tag["TagKey"],
                )
                ok = False
                continue
            out[key] = values
        if not ok:
            return None
        if create:
            for key, values in out.items():
                self.desired.want_tag(key, [v for v in values if v != "*"])
        return out

    def named_item(
        self, item: dict[str, Any], path: str, tperms: set[str], dperms: set[str], add: Any
    ) -> None:
        db = self.database(item["Database"], f"{path}.Database")
        if db is None:
            return
        has_cols = "Columns" in item or "ExcludedColumns" in item
        if "Table" not in item:
            if has_cols or "DataCellsFilter" in item:
                self.error(path, "expected a Table for Columns, ExcludedColumns or DataCellsFilter")
                return
            if not dperms:
                if self._dperms_listed:
                    return
                self.error(
                    path,
                    "a database item (no Table) needs database_permissions; table_permissions "
                    'apply to tables: name a Table, or Table "*" for every table',
                )
                return
            add(database_resource(db, self.catalog_id), dperms, path)
            return
        raw_table = item["Table"]
        if raw_table.strip() == "*":
            if raw_table != "*":
                self._trimmed(raw_table, f"{path}.Table", "table name")
            table: str | None = "*"
        else:
            table = self.glue_name(raw_table, f"{path}.Table", "table name")
        if table is None:
            return
        if dperms:
            add(database_resource(db, self.catalog_id), dperms, path)
        if "Columns" in item and "ExcludedColumns" in item:
            self.error(path, "expected Columns or ExcludedColumns, not both")
            return
        if has_cols or "DataCellsFilter" in item:
            if table == "*":
                self.error(
                    f"{path}.Table",
                    'expected a named table for column or data cells filter grants, not "*"',
                    raw_table,
                )
                return
            if has_cols and "DataCellsFilter" in item:
                self.error(
                    path,
                    "expected Columns/ExcludedColumns or DataCellsFilter, not both "
                    "(a data cells filter declares its own columns)",
                )
                return
        if not tperms:
            if not dperms and not self._tperms_listed:
                self.error(path, "expected table_permissions for this table")
            return
        if has_cols:
            extra = sorted(tperms - COLUMN_PERMISSIONS)
            if extra:
                self.error(
                    path,
                    f"column-level grants allow SELECT only; got {', '.join(extra)}",
                    sorted(tperms),
                )
                return
            field_name = "Columns" if "Columns" in item else "ExcludedColumns"
            cols = self.columns(item[field_name], f"{path}.{field_name}")
            if cols is None:
                return
            assert table is not None
            resource = columns_resource(
                db,
                table,
                self.catalog_id,
                columns=cols if field_name == "Columns" else None,
                excluded=cols if field_name == "ExcludedColumns" else None,
            )
            add(resource, tperms, path)
            return
        if "DataCellsFilter" in item:
            extra = sorted(tperms - DATA_CELLS_FILTER_PERMISSIONS)
            if extra:
                self.error(
                    path,
                    f"data cells filters take SELECT, DESCRIBE or DROP; got {', '.join(extra)}",
                    sorted(tperms),
                )
                return
            name = self._trimmed(
                item["DataCellsFilter"], f"{path}.DataCellsFilter", "data cells filter name"
            )
            if name is None:
                return
            add(data_cells_filter_resource(db, table, name, self.catalog_id), tperms, path)
            return
        add(table_resource(db, table, self.catalog_id), tperms, path)

    def check_conflicts(self) -> None:
        for key, revoked in self.desired.revokes.items():
            granted = self.desired.grants.get(key)
            if granted is None:
                continue
            both = sorted(granted.permissions & revoked.permissions)
            if both:
                self.error(
                    revoked.sources[0],
                    f"revokes {', '.join(both)} on {describe_resource(revoked.resource)} that "
                    f"{', '.join(granted.sources)} grants to the same principal; expected a "
                    "document to either grant or revoke a permission",
                )
