"""What moto's Lake Formation lacks for the local Athena to enforce grants, added to it.

moto 5.2 stores grants and LF-Tags but cannot answer two questions the permission
evaluator (:mod:`lakegov.governance.access`) asks:

- ``GetResourceLFTags`` on a database or table that has no tag fails with a server error
  (``KeyError``) instead of an empty answer, and ``AddLFTagsToResource`` *replaces* every
  tag of a resource rather than adding or overwriting the keys it names;
- a grant adding permissions to a principal's existing grant on the same resource changes
  the stored grant in place, so its hash is stale and the next revoke of it crashes
  (``KeyError``): the grant is re-stored after the merge;
- ``BatchGrantPermissions`` and ``BatchRevokePermissions`` read each entry's grant options
  from a misspelt key and drop them: the API's ``PermissionsWithGrantOption`` is read;
- a grant on a database or table that is not in the Glue catalog is stored, where AWS
  refuses it (``EntityNotFoundException``; in ``BatchGrantPermissions``, a failure of that
  entry alone): refused here too;
- data cells filters exist only as ``ListDataCellsFilter``, which always answers ``[]``:
  ``CreateDataCellsFilter``, ``GetDataCellsFilter``, ``UpdateDataCellsFilter`` and
  ``DeleteDataCellsFilter`` are missing.

:func:`install` gives moto those operations with AWS's behaviour: filters are stored per
account and region, validated against the Glue table they belong to (the table and its
columns must exist, the name must be unique on the table), and listed by table. It changes
moto's classes in this process, for the in-process mock and the embedded server alike, and
is idempotent. Nothing here answers for what is not stored.
"""

from __future__ import annotations

from typing import Any

from lakegov.local.moto_patch import once

_FILTERS = "lakegov_data_cells_filters"
_OPERATIONS = (
    "CreateDataCellsFilter",
    "GetDataCellsFilter",
    "UpdateDataCellsFilter",
    "DeleteDataCellsFilter",
)


@once
def install() -> None:
    """Add the missing operations to moto's Lake Formation (once per process)."""
    from moto.lakeformation import models, responses, urls

    models.PermissionCatalog.add_permission = _add_permission  # type: ignore[method-assign]
    backend_cls = models.LakeFormationBackend
    backend_cls.grant_permissions = _grant_existing(backend_cls.grant_permissions)  # type: ignore[method-assign]
    backend_cls.batch_grant_permissions = _batch_grant  # type: ignore[method-assign,assignment]
    backend_cls.batch_revoke_permissions = _batch_revoke  # type: ignore[method-assign]
    response_cls = responses.LakeFormationResponse
    backend_cls.get_resource_lf_tags = _get_resource_lf_tags  # type: ignore[method-assign]
    backend_cls.add_lf_tags_to_resource = _add_lf_tags_to_resource  # type: ignore[method-assign]
    backend_cls.list_data_cells_filter = _backend_list_filters  # type: ignore[method-assign]
    backend_cls.put_data_cells_filter = _backend_put_filter  # type: ignore[attr-defined]
    backend_cls.get_data_cells_filter = _backend_get_filter  # type: ignore[attr-defined]
    backend_cls.delete_data_cells_filter = _backend_delete_filter  # type: ignore[attr-defined]
    response_cls.batch_grant_permissions = _response_batch_grant  # type: ignore[method-assign]
    response_cls.list_data_cells_filter = _response_list_filters  # type: ignore[method-assign]
    response_cls.create_data_cells_filter = _response_create_filter  # type: ignore[attr-defined]
    response_cls.update_data_cells_filter = _response_update_filter  # type: ignore[attr-defined]
    response_cls.get_data_cells_filter = _response_get_filter  # type: ignore[attr-defined]
    response_cls.delete_data_cells_filter = _response_delete_filter  # type: ignore[attr-defined]
    for operation in _OPERATIONS:
        urls.url_paths[f"{{0}}/{operation}$"] = urls.response.dispatch


def _batch_grant(self: Any, catalog_id: str, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry granted, or its failure (as ``BatchGrantPermissions`` reports them)."""
    from moto.core.exceptions import JsonRESTError, ServiceException

    failures = []
    for entry in entries:
        try:
            self.grant_permissions(
                catalog_id=catalog_id,
                principal=entry.get("Principal"),
                resource=entry.get("Resource"),
                permissions=entry.get("Permissions"),
                permissions_with_grant_options=entry.get("PermissionsWithGrantOption"),
            )
        except (JsonRESTError, ServiceException) as exc:  # an AWS error: this entry's
            code = getattr(exc, "error_type", None) or getattr(exc, "code", type(exc).__name__)
            message = getattr(exc, "message", str(exc))
            failures.append(
                {"RequestEntry": entry, "Error": {"ErrorCode": code, "ErrorMessage": message}}
            )
    return failures


def _response_batch_grant(self: Any) -> str:
    import json

    catalog_id = self._get_param("CatalogId") or self.current_account
    failures = self.lakeformation_backend.batch_grant_permissions(
        catalog_id, self._get_param("Entries")
    )
    return json.dumps({"Failures": failures})


def _grant_existing(grant: Any) -> Any:
    """moto's ``grant_permissions``, refused for a database or table not in Glue."""

    def grant_permissions(
        self: Any, catalog_id: str, principal: Any, resource: Any, *a: Any, **k: Any
    ) -> Any:
        _require_granted_resource(self, resource or {})
        return grant(self, catalog_id, principal, resource, *a, **k)

    return grant_permissions


def _batch_revoke(self: Any, catalog_id: str, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        self.revoke_permissions(
            catalog_id=catalog_id,
            principal=entry.get("Principal"),
            resource=entry.get("Resource"),
            permissions_to_revoke=entry.get("Permissions"),
            permissions_with_grant_options_to_revoke=entry.get("PermissionsWithGrantOption"),
        )


def _add_permission(self: Any, permission: Any) -> None:
    """Merge into the principal's grant on the same resource, re-hashed (set member)."""
    for existing in list(self.permissions):
        if permission.equal_principal_and_resouce(existing):
            self.permissions.remove(existing)
            existing.merge(permission)
            self.permissions.add(existing)
            return
    self.permissions.add(permission)


# -- the Glue side: what exists ---------------------------------------------------------
def _glue(backend: Any) -> Any:
    from moto.glue.models import glue_backends

    return glue_backends[backend.account_id][backend.region_name]


def _table_columns(backend: Any, database: str, table: str) -> set[str] | None:
    """The table's column names (partition keys included), ``None`` when it does not exist."""
    try:
        found = _glue(backend).get_table(database, table)
    except Exception:
        return None
    version = found.as_dict()
    columns = list((version.get("StorageDescriptor") or {}).get("Columns") or [])
    columns += version.get("PartitionKeys") or []
    return {str(c["Name"]).lower() for c in columns}


def _database_exists(backend: Any, database: str) -> bool:
    try:
        _glue(backend).get_database(database)
    except Exception:
        return False
    return True


# -- LF-Tags on resources ---------------------------------------------------------------
def _not_found(message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("EntityNotFoundException", message)


def _invalid(message: str) -> Exception:
    from moto.lakeformation.exceptions import InvalidInput

    return InvalidInput(message)


def _get_resource_lf_tags(
    self: Any, catalog_id: str, resource: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Tags assigned to a resource; ``[]`` for one that exists untagged (AWS), not a crash."""
    database_tags: list[dict[str, Any]] = []
    table_tags: list[dict[str, Any]] = []
    column_tags: list[dict[str, Any]] = []
    if "Database" in resource:
        body = resource["Database"]
        key = (body.get("CatalogId", self.account_id), body["Name"])
        if key not in self.lf_database_tags and not _database_exists(self, body["Name"]):
            raise _not_found(f"Database {body['Name']} not found")
        database_tags = list(self.lf_database_tags.get(key, []))
    if "Table" in resource:
        body = resource["Table"]
        tkey = (body.get("CatalogId", self.account_id), body["DatabaseName"], body.get("Name"))
        if tkey not in self.lf_table_tags and (
            _table_columns(self, body["DatabaseName"], str(body.get("Name"))) is None
        ):
            raise _not_found(f"Table {body['DatabaseName']}.{body.get('Name')} not found")
        table_tags = list(self.lf_table_tags.get(tkey, []))
    if "TableWithColumns" in resource:
        body = resource["TableWithColumns"]
        catalog = body.get("CatalogId", self.account_id)
        for column in body.get("ColumnNames") or []:
            tags = self.lf_columns_tags.get((catalog, body["DatabaseName"], body["Name"], column))
            if tags:
                column_tags.append({"Name": column, "LFTags": list(tags)})
    return database_tags, table_tags, column_tags


def _add_lf_tags_to_resource(
    self: Any, catalog_id: str, resource: dict[str, Any], tags: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Attach tags key by key (a key already on the resource takes the new value), as AWS.

    The resource must exist (AWS: ``EntityNotFoundException``): a tag on a misspelt table
    or column is refused here too, not stored for nothing."""
    _require_resource(self, resource)
    existing = self.list_lf_tags(catalog_id)
    failures = []
    for tag in tags:
        tag.setdefault("CatalogId", catalog_id)
        allowed = existing.get(tag["TagKey"])
        values = tag.get("TagValues") or []
        if allowed is None or len(values) != 1 or values[0] not in allowed:
            failures.append(
                {
                    "LFTag": tag,
                    "Error": {
                        "ErrorCode": "EntityNotFoundException",
                        "ErrorMessage": "Tag or tag value does not exist.",
                    },
                }
            )
    if failures:
        return failures

    def merged(current: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        by_key = {t["TagKey"]: t for t in current or []}
        by_key.update({t["TagKey"]: dict(t) for t in tags})
        return list(by_key.values())

    if "Database" in resource:
        body = resource["Database"]
        key = (body.get("CatalogId", self.account_id), body["Name"])
        self.lf_database_tags[key] = merged(self.lf_database_tags.get(key))
    if "Table" in resource:
        body = resource["Table"]
        tkey = (body.get("CatalogId", self.account_id), body["DatabaseName"], body["Name"])
        self.lf_table_tags[tkey] = merged(self.lf_table_tags.get(tkey))
    if "TableWithColumns" in resource:
        body = resource["TableWithColumns"]
        catalog = body.get("CatalogId", self.account_id)
        for column in body["ColumnNames"]:
            ckey = (catalog, body["DatabaseName"], body["Name"], column)
            self.lf_columns_tags[ckey] = merged(self.lf_columns_tags.get(ckey))
    return []


def _require_resource(backend: Any, resource: dict[str, Any]) -> None:
    if "Database" in resource:
        name = resource["Database"]["Name"]
        if not _database_exists(backend, name):
            raise _not_found(f"Database {name} not found")
    for kind in ("Table", "TableWithColumns"):
        if kind not in resource:
            continue
        body = resource[kind]
        database, table = body["DatabaseName"], str(body.get("Name"))
        columns = _table_columns(backend, database, table)
        if columns is None:
            raise _not_found(f"Table {database}.{table} not found")
        unknown = sorted(c for c in body.get("ColumnNames") or [] if str(c).lower() not in columns)
        if unknown:
            raise _not_found(f"Columns not in table {database}.{table}: {', '.join(unknown)}")


def _require_granted_resource(backend: Any, resource: dict[str, Any]) -> None:
    """A grant's database, table (or every table of a database) exists in the Glue
    catalog it names (``CatalogId``: another account's, for a cross-account grant)."""
    from types import SimpleNamespace

    def catalog(body: dict[str, Any]) -> Any:
        account = str(body.get("CatalogId") or backend.account_id)
        return SimpleNamespace(account_id=account, region_name=backend.region_name)

    if "Database" in resource:
        body = resource["Database"]
        _require_resource(catalog(body), {"Database": body})
    for kind in ("Table", "TableWithColumns"):
        body = resource.get(kind)
        if body is None:
            continue
        if "TableWildcard" in body or body.get("Name") is None:
            _require_resource(catalog(body), {"Database": {"Name": body["DatabaseName"]}})
        else:
            _require_resource(catalog(body), {kind: body})


# -- data cells filters -----------------------------------------------------------------
def _filters(backend: Any) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    # kept in the backend's __dict__: moto's reset re-initialises it, so filters go too
    store: dict[tuple[str, str, str, str], dict[str, Any]] = backend.__dict__.setdefault(
        _FILTERS, {}
    )
    return store


def _filter_key(backend: Any, data: dict[str, Any]) -> tuple[str, str, str, str]:
    for field in ("DatabaseName", "TableName", "Name"):
        if not data.get(field):
            raise _invalid(f"{field} is required")
    return (
        str(data.get("TableCatalogId") or backend.account_id),
        str(data["DatabaseName"]),
        str(data["TableName"]),
        str(data["Name"]),
    )


def _backend_put_filter(self: Any, data: dict[str, Any], *, create: bool) -> None:
    key = _filter_key(self, data)
    store = _filters(self)
    if create and key in store:
        raise _already_exists(f"Data cells filter {key[3]} already exists on {key[1]}.{key[2]}")
    if not create and key not in store:
        raise _not_found(f"Data cells filter {key[3]} not found on {key[1]}.{key[2]}")
    columns = _table_columns(self, key[1], key[2])
    if columns is None:
        raise _not_found(f"Table {key[1]}.{key[2]} not found")
    has_names = bool(data.get("ColumnNames"))
    has_wildcard = isinstance(data.get("ColumnWildcard"), dict)
    if has_names == has_wildcard:
        raise _invalid("Exactly one of ColumnNames and ColumnWildcard is required")
    named = data.get("ColumnNames") or (data.get("ColumnWildcard") or {}).get("ExcludedColumnNames")
    unknown = sorted(c for c in named or [] if str(c).lower() not in columns)
    if unknown:
        raise _invalid(f"Columns not in table {key[1]}.{key[2]}: {', '.join(unknown)}")
    row = data.get("RowFilter")
    if not isinstance(row, dict) or (
        not str(row.get("FilterExpression") or "").strip() and "AllRowsWildcard" not in row
    ):
        raise _invalid("RowFilter needs a FilterExpression or the AllRowsWildcard")
    stored = {k: v for k, v in data.items() if k != "VersionId"}
    stored["TableCatalogId"] = key[0]
    stored["VersionId"] = str(int(store.get(key, {}).get("VersionId", "0")) + 1)
    store[key] = stored


def _already_exists(message: str) -> Exception:
    from moto.lakeformation.exceptions import AlreadyExists

    return AlreadyExists(message)


def _backend_get_filter(self: Any, key: tuple[str, str, str, str]) -> dict[str, Any]:
    found = _filters(self).get(key)
    if found is None:
        raise _not_found(f"Data cells filter {key[3]} not found on {key[1]}.{key[2]}")
    return dict(found)


def _backend_delete_filter(self: Any, key: tuple[str, str, str, str]) -> None:
    if _filters(self).pop(key, None) is None:
        raise _not_found(f"Data cells filter {key[3]} not found on {key[1]}.{key[2]}")


def _backend_list_filters(self: Any, table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    out = []
    for key, data in sorted(_filters(self).items()):
        if table is not None and (
            key[0] != str(table.get("CatalogId") or self.account_id)
            or key[1] != table.get("DatabaseName")
            or key[2] != table.get("Name")
        ):
            continue
        out.append(dict(data))
    return out


def _response_key(response: Any) -> tuple[str, str, str, str]:
    return _filter_key(
        response.lakeformation_backend,
        {
            "TableCatalogId": response._get_param("TableCatalogId"),
            "DatabaseName": response._get_param("DatabaseName"),
            "TableName": response._get_param("TableName"),
            "Name": response._get_param("Name"),
        },
    )


def _response_create_filter(self: Any) -> str:
    self.lakeformation_backend.put_data_cells_filter(self._get_param("TableData"), create=True)
    return "{}"


def _response_update_filter(self: Any) -> str:
    self.lakeformation_backend.put_data_cells_filter(self._get_param("TableData"), create=False)
    return "{}"


def _response_get_filter(self: Any) -> str:
    import json

    found = self.lakeformation_backend.get_data_cells_filter(_response_key(self))
    return json.dumps({"DataCellsFilter": found})


def _response_delete_filter(self: Any) -> str:
    self.lakeformation_backend.delete_data_cells_filter(_response_key(self))
    return "{}"


def _response_list_filters(self: Any) -> str:
    import json

    filters = self.lakeformation_backend.list_data_cells_filter(self._get_param("Table"))
    return json.dumps({"DataCellsFilters": filters})
