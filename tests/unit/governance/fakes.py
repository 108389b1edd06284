"""An in-memory Lake Formation with AWS's behaviour where moto differs (see README).

Covers the operations the governance engine calls. Differences from moto that matter:
``AddLFTagsToResource`` merges tags (moto replaces them), ``GetResourceLFTags`` answers for
untagged resources (moto raises KeyError), batch grants keep ``PermissionsWithGrantOption``
(moto drops it), ``CreateLFTag`` on an existing key is ``AlreadyExistsException`` (moto
overwrites), and data cells filters exist (moto: not implemented). Errors can be scripted
per call (``fail_calls``) and per batch entry (``fail_entries``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

ACCOUNT = "123456789012"


def client_error(code: str, op: str, message: str = "scripted") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


def _rkey(resource: dict[str, Any]) -> str:
    return json.dumps(resource, sort_keys=True)


class FakeLakeFormation:
    def __init__(self, page_size: int = 3) -> None:
        self.page_size = page_size
        # (principal, resource json) -> [perms, grantable]
        self.grants: dict[tuple[str, str], list[set[str]]] = {}
        self.tags: dict[str, list[str]] = {}
        self.resource_tags: dict[str, dict[str, str]] = {}
        self.filters: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # op -> list of error codes raised by the next calls of that op
        self.fail_calls: dict[str, list[str]] = {}
        # (op, predicate on entry, error code, how many times)
        self.fail_entries: list[tuple[str, Callable[[dict[str, Any]], bool], str, int]] = []
        # Lake Formation reports SELECT on a table as TableWithColumns + ColumnWildcard
        self.report_select_as_columns = False
        self.admins: list[str] = []

    # helpers
    def _enter(self, op: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((op, copy.deepcopy(kwargs)))
        scripted = self.fail_calls.get(op)
        if scripted:
            raise client_error(scripted.pop(0), op)

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    def seed_grant(
        self,
        principal: str,
        resource: dict[str, Any],
        perms: list[str],
        grantable: list[str] = (),  # type: ignore[assignment]
    ) -> None:
        entry = self.grants.setdefault((principal, _rkey(resource)), [set(), set()])
        entry[0].update(perms)
        entry[1].update(grantable)

    def held(self, principal: str, resource: dict[str, Any]) -> set[str]:
        entry = self.grants.get((principal, _rkey(resource)))
        return set(entry[0]) if entry else set()

    # permissions
    def list_permissions(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("list_permissions", kwargs)
        items = []
        for (principal, rjson), (perms, grantable) in sorted(self.grants.items()):
            if not perms:
                continue
            resource = json.loads(rjson)
            item_perms = sorted(perms)
            # AWS lists SELECT on all tables of a database as TableWithColumns named
            # ALL_TABLES with a ColumnWildcard (no TableWildcard key), always
            wildcard = "Table" in resource and "TableWildcard" in resource["Table"]
            if (
                self.report_select_as_columns
                and "Table" in resource
                and "Name" in resource["Table"]
            ) or wildcard:
                if "SELECT" in perms:
                    body = dict(resource["Table"])
                    if wildcard:
                        body.pop("TableWildcard")
                        body["Name"] = "ALL_TABLES"
                    body["ColumnWildcard"] = {}
                    items.append(
                        {
                            "Principal": {"DataLakePrincipalIdentifier": principal},
                            "Resource": {"TableWithColumns": body},
                            "Permissions": ["SELECT"],
                            "PermissionsWithGrantOption": ["SELECT"]
                            if "SELECT" in grantable
                            else [],
                        }
                    )
                item_perms = sorted(perms - {"SELECT"})
                if not item_perms:
                    continue
            items.append(
                {
                    "Principal": {"DataLakePrincipalIdentifier": principal},
                    "Resource": resource,
                    "Permissions": item_perms,
                    "PermissionsWithGrantOption": sorted(grantable & set(item_perms)),
                }
            )
        start = int(kwargs.get("NextToken") or 0)
        page = items[start : start + self.page_size]
        out: dict[str, Any] = {"PrincipalResourcePermissions": page}
        if start + self.page_size < len(items):
            out["NextToken"] = str(start + self.page_size)
        return out

    def _batch(self, op: str, kwargs: dict[str, Any], grant: bool) -> dict[str, Any]:
        self._enter(op, kwargs)
        assert len(kwargs["Entries"]) <= 20, "Lake Formation takes at most 20 entries"
        failures = []
        for entry in kwargs["Entries"]:
            code = None
            for i, (fop, pred, fcode, times) in enumerate(self.fail_entries):
                if fop == op and times > 0 and pred(entry):
                    self.fail_entries[i] = (fop, pred, fcode, times - 1)
                    code = fcode
                    break
            if code:
                failures.append(
                    {
                        "RequestEntry": entry,
                        "Error": {"ErrorCode": code, "ErrorMessage": "scripted"},
                    }
                )
                continue
            principal = entry["Principal"]["DataLakePrincipalIdentifier"]
            key = (principal, _rkey(entry["Resource"]))
            if grant:
                self.seed_grant(
                    principal,
                    entry["Resource"],
                    entry["Permissions"],
                    entry.get("PermissionsWithGrantOption") or [],
                )
            elif key in self.grants:
                self.grants[key][0] -= set(entry["Permissions"])
                self.grants[key][1] -= set(entry.get("PermissionsWithGrantOption") or [])
                self.grants[key][1] &= self.grants[key][0]
        return {"Failures": failures}

    def batch_grant_permissions(self, **kwargs: Any) -> dict[str, Any]:
        return self._batch("batch_grant_permissions", kwargs, grant=True)

    def batch_revoke_permissions(self, **kwargs: Any) -> dict[str, Any]:
        return self._batch("batch_revoke_permissions", kwargs, grant=False)

    # LF-Tags
    def list_lf_tags(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("list_lf_tags", kwargs)
        return {
            "LFTags": [
                {"CatalogId": ACCOUNT, "TagKey": k, "TagValues": list(v)}
                for k, v in self.tags.items()
            ]
        }

    def get_lf_tag(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("get_lf_tag", kwargs)
        if kwargs["TagKey"] not in self.tags:
            raise client_error("EntityNotFoundException", "GetLFTag")
        return {"TagKey": kwargs["TagKey"], "TagValues": list(self.tags[kwargs["TagKey"]])}

    def create_lf_tag(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("create_lf_tag", kwargs)
        assert 1 <= len(kwargs["TagValues"]) <= 50
        if kwargs["TagKey"] in self.tags:
            raise client_error("AlreadyExistsException", "CreateLFTag")
        self.tags[kwargs["TagKey"]] = list(kwargs["TagValues"])
        return {}

    def update_lf_tag(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("update_lf_tag", kwargs)
        assert len(kwargs.get("TagValuesToAdd", [])) <= 50
        if kwargs["TagKey"] not in self.tags:
            raise client_error("EntityNotFoundException", "UpdateLFTag")
        for v in kwargs.get("TagValuesToAdd", []):
            if v not in self.tags[kwargs["TagKey"]]:
                self.tags[kwargs["TagKey"]].append(v)
        return {}

    def _targets(self, resource: dict[str, Any]) -> list[str]:
        if "TableWithColumns" in resource:
            body = resource["TableWithColumns"]
            return [
                _rkey({"Column": [body["DatabaseName"], body["Name"], c]})
                for c in body["ColumnNames"]
            ]
        return [_rkey(resource)]

    def add_lf_tags_to_resource(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("add_lf_tags_to_resource", kwargs)
        failures = []
        for tag in kwargs["LFTags"]:
            if tag["TagValues"][0] not in self.tags.get(tag["TagKey"], []):
                failures.append(
                    {
                        "LFTag": tag,
                        "Error": {
                            "ErrorCode": "EntityNotFoundException",
                            "ErrorMessage": "no such tag value",
                        },
                    }
                )
                continue
            for target in self._targets(kwargs["Resource"]):
                self.resource_tags.setdefault(target, {})[tag["TagKey"]] = tag["TagValues"][0]
        return {"Failures": failures}

    def remove_lf_tags_from_resource(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("remove_lf_tags_from_resource", kwargs)
        for tag in kwargs["LFTags"]:
            for target in self._targets(kwargs["Resource"]):
                assigned = self.resource_tags.get(target, {})
                if assigned.get(tag["TagKey"]) == tag["TagValues"][0]:
                    del assigned[tag["TagKey"]]
        return {"Failures": []}

    def get_data_lake_settings(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("get_data_lake_settings", kwargs)
        admins = [{"DataLakePrincipalIdentifier": a} for a in self.admins]
        return {"DataLakeSettings": {"DataLakeAdmins": admins}}

    def get_resource_lf_tags(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("get_resource_lf_tags", kwargs)
        resource = kwargs["Resource"]

        def pairs(target: str) -> list[dict[str, Any]]:
            return [
                {"CatalogId": ACCOUNT, "TagKey": k, "TagValues": [v]}
                for k, v in self.resource_tags.get(target, {}).items()
            ]

        if "Database" in resource:
            return {"LFTagOnDatabase": pairs(_rkey(resource))}
        if "Table" in resource:
            return {"LFTagsOnTable": pairs(_rkey(resource))}
        body = resource["TableWithColumns"]
        cols = []
        for c, target in zip(body["ColumnNames"], self._targets(resource), strict=True):
            if pairs(target):
                cols.append({"Name": c, "LFTags": pairs(target)})
        return {"LFTagsOnColumns": cols}

    # data cells filters
    def get_data_cells_filter(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("get_data_cells_filter", kwargs)
        key = (
            kwargs["TableCatalogId"],
            kwargs["DatabaseName"],
            kwargs["TableName"],
            kwargs["Name"],
        )
        if key not in self.filters:
            raise client_error("EntityNotFoundException", "GetDataCellsFilter")
        return {"DataCellsFilter": copy.deepcopy(self.filters[key])}

    def _filter_key(self, data: dict[str, Any]) -> tuple[str, str, str, str]:
        return (data["TableCatalogId"], data["DatabaseName"], data["TableName"], data["Name"])

    def create_data_cells_filter(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("create_data_cells_filter", kwargs)
        key = self._filter_key(kwargs["TableData"])
        if key in self.filters:
            raise client_error("AlreadyExistsException", "CreateDataCellsFilter")
        self.filters[key] = copy.deepcopy(kwargs["TableData"])
        return {}

    def update_data_cells_filter(self, **kwargs: Any) -> dict[str, Any]:
        self._enter("update_data_cells_filter", kwargs)
        self.filters[self._filter_key(kwargs["TableData"])] = copy.deepcopy(kwargs["TableData"])
        return {}
