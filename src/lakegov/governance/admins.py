"""The stack's governance roles as Lake Formation data lake administrators.

``PutDataLakeSettings`` replaces the account's whole settings, administrators included, so
adding a role means reading the settings, adding to the list and writing everything back;
and removing one means taking out exactly that role and keeping everyone else. The
CloudFormation custom resource (``handlers.lf_admins``) calls these on create, update and
delete, so ``sam deploy`` leaves nothing to do by hand.
"""

from __future__ import annotations

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
