"""The stack's governance roles as Lake Formation data lake administrators.

``PutDataLakeSettings`` replaces the account's whole settings, administrators included, so
adding a role means reading the settings, adding to the list and writing everything back;
and removing one means taking out exactly that role and keeping everyone else. The
CloudFormation custom resource (``handlers.lf_admins``) calls these on create, update and
delete, so ``sam deploy`` leaves nothing to do by hand. The same function makes sure the
LF-Tags the dbt project sets (``lf_tags_config``) exist and that the dbt job's role may
associate them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any


def _principal(arn: str) -> dict[str, str]:
    return {"DataLakePrincipalIdentifier": arn}


def change_administrators(
    lakeformation: Any,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    catalog_id: str | None = None,
) -> list[str]:
    """Add ``add`` to and take ``remove`` out of the data lake administrators, keeping every
    other setting as it is; returns the administrators after the change."""
    kwargs = {"CatalogId": catalog_id} if catalog_id else {}
    settings = dict(lakeformation.get_data_lake_settings(**kwargs)["DataLakeSettings"])
    current = [p["DataLakePrincipalIdentifier"] for p in settings.get("DataLakeAdmins", [])]
    removed = set(remove) - set(add)
    wanted = [arn for arn in current if arn not in removed]
    wanted += [arn for arn in dict.fromkeys(add) if arn not in wanted]
    if wanted == current:
        return current
    settings["DataLakeAdmins"] = [_principal(arn) for arn in wanted]
    lakeformation.put_data_lake_settings(DataLakeSettings=settings, **kwargs)
    return wanted


def apply_custom_resource(lakeformation: Any, event: dict[str, Any]) -> list[str]:
    """The administrators change one CloudFormation request asks for (``Principals``)."""
    new = [str(p) for p in (event.get("ResourceProperties") or {}).get("Principals", [])]
    old = [str(p) for p in (event.get("OldResourceProperties") or {}).get("Principals", [])]
    request = event["RequestType"]
    if request == "Create":
        return change_administrators(lakeformation, add=new)
    if request == "Update":
        return change_administrators(lakeformation, add=new, remove=old)
    if request == "Delete":
        # the roles are the stack's own (unique ARNs, deleted with it): none of them was an
        # administrator before the stack made it one, so removing them restores the list
        return change_administrators(lakeformation, remove=new)
    raise ValueError(f"unknown CloudFormation request type {request!r}")


TAG_VALUES_PER_CALL = 50  # CreateLFTag / UpdateLFTag take at most 50 values
TAG_PERMISSIONS = ["ASSOCIATE", "DESCRIBE"]


def _nothing_to_revoke(exc: Exception) -> bool:
    """The tag was deleted meanwhile, or the principal holds nothing on it: AWS answers
    ``InvalidInputException: No permissions revoked...`` for a grant that is not there
    (a rollback after a failed create, a grant already revoked by hand)."""
    error = getattr(exc, "response", {}).get("Error", {})
    if error.get("Code") == "EntityNotFoundException":
        return True
    return error.get("Code") == "InvalidInputException" and str(
        error.get("Message", "")
    ).startswith("No permissions revoked")


def ensure_tags(lakeformation: Any, tags: dict[str, list[str]]) -> None:
    """Create the LF-Tag keys and values that do not exist yet (existing ones are kept)."""
    existing: dict[str, set[str]] = {}
    for page in lakeformation.get_paginator("list_lf_tags").paginate():
        for tag in page.get("LFTags", []):
            existing[tag["TagKey"]] = set(tag["TagValues"])
    for key, values in tags.items():
        if key not in existing:
            first, values = values[:TAG_VALUES_PER_CALL], values[TAG_VALUES_PER_CALL:]
            lakeformation.create_lf_tag(TagKey=key, TagValues=first)
            existing[key] = set(first)
        missing = [v for v in values if v not in existing[key]]
        for start in range(0, len(missing), TAG_VALUES_PER_CALL):
            lakeformation.update_lf_tag(
                TagKey=key, TagValuesToAdd=missing[start : start + TAG_VALUES_PER_CALL]
            )


def _tag_grants(
    lakeformation: Any, principal: str, tags: dict[str, list[str]], grant: bool
) -> None:
    call = lakeformation.grant_permissions if grant else lakeformation.revoke_permissions
    for key, values in tags.items():
        try:
            call(
                Principal=_principal(principal),
                Resource={"LFTag": {"TagKey": key, "TagValues": values}},
                Permissions=TAG_PERMISSIONS,
            )
        except Exception as exc:
            if grant or not _nothing_to_revoke(exc):
                raise


def apply_tag_association(lakeformation: Any, event: dict[str, Any]) -> dict[str, list[str]]:
    """Ensure the tags exist and ``Principal`` may associate them (dbt-athena's
    ``lf_tags_config``); on delete revoke that, keeping the tags (documents may use them)."""
    props = event.get("ResourceProperties") or {}
    principal = str(props["Principal"])
    request = event["RequestType"]
    if request == "Delete":
        try:
            tags = _tags(props.get("Tags"))
        except (ValueError, AttributeError, TypeError):
            # a Tags value that never parsed failed its Create: nothing was granted, and a
            # failed Delete would leave the rollback stuck (ROLLBACK_FAILED)
            return {}
        _tag_grants(lakeformation, principal, tags, grant=False)
        return tags
    tags = _tags(props.get("Tags"))
    if request == "Update":
        old_props = event.get("OldResourceProperties") or {}
        old = _tags(old_props.get("Tags"))
        gone = {k: [v for v in vs if v not in tags.get(k, [])] for k, vs in old.items()}
        _tag_grants(
            lakeformation,
            str(old_props.get("Principal", principal)),
            {k: vs for k, vs in gone.items() if vs},
            grant=False,
        )
    elif request != "Create":
        raise ValueError(f"unknown CloudFormation request type {request!r}")
    ensure_tags(lakeformation, tags)
    _tag_grants(lakeformation, principal, tags, grant=True)
    return tags


def _tags(value: Any) -> dict[str, list[str]]:
    """``{"key": ["value", ...]}``, given as that mapping or as its JSON text."""
    parsed = json.loads(value) if isinstance(value, str) else (value or {})
    return {str(k): [str(v) for v in vs] for k, vs in parsed.items()}
