"""What Lake Formation holds today, read (never written): grants, LF-Tags, tags on resources.

Every read goes through :func:`counted_read`, which counts the call (a plan reports its
read calls) and turns a throttled or unavailable answer into
:class:`~lakegov.errors.RetryableError`.

Reading permissions: one paginated ``ListPermissions`` on the whole catalog (no
``Principal``/``Resource`` filter: with both set, Lake Formation returns *effective*
rather than explicitly granted permissions, and the filters cannot select LF-Tag policy
resources everywhere). The number of read calls therefore depends on the size of the
catalog's grants, not on the document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code
from lakegov.errors import RetryableError
from lakegov.governance.model import Resource, describe_resource, resource_key

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ConcurrentModificationException",
        "InternalServiceException",
        "OperationTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestLimitExceeded",
    }
)


@dataclass
class CurrentState:
    """What Lake Formation holds today, indexed for comparison."""

    catalog_id: str
    permissions: dict[tuple[str, str], tuple[set[str], set[str]]] = field(default_factory=dict)
    # (principal, resource key) -> the resource as ListPermissions names it (what a revoke
    # must name: Lake Formation matches a revoked resource exactly)
    listed: dict[tuple[str, str], Resource] = field(default_factory=dict)
    tags: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # casefold key -> values
    read_calls: int = 0

    def has_tag_value(self, key: str, value: str) -> bool:
        entry = self.tags.get(key.casefold())
        return entry is not None and value.casefold() in {v.casefold() for v in entry[1]}


def counted_read(
    state: CurrentState, fn: Callable[..., dict[str, Any]], **kwargs: Any
) -> dict[str, Any]:
    """One read: counted in ``state``; a throttled or unavailable answer raises
    :class:`~lakegov.errors.RetryableError`."""
    state.read_calls += 1
    try:
        return fn(**kwargs)
    except ClientError as exc:
        if error_code(exc) in TRANSIENT_CODES:
            raise RetryableError(f"Lake Formation read failed: {error_code(exc)}") from exc
        raise


def _pages(
    state: CurrentState, fn: Callable[..., dict[str, Any]], key: str, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        page = counted_read(state, fn, **args)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return


@dataclass(frozen=True)
class HeldPermission:
    """One ``ListPermissions`` item: ``resource`` is :func:`resource_key`, a canonical JSON."""

    principal: str
    resource: str
    permissions: frozenset[str]
    grantable: frozenset[str]
    listed: Resource = field(default_factory=dict, compare=False, hash=False)


def list_permissions(
    lakeformation_client: Any, *, catalog_id: str, state: CurrentState | None = None
) -> Iterator[HeldPermission]:
    """Every explicit grant of the catalog, all pages, resources in canonical form.

    Unfiltered: Lake Formation takes a ``Principal`` filter only with a ``Resource``, and
    then answers with effective rather than granted permissions. ``state`` counts the calls.
    """
    state = state if state is not None else CurrentState(catalog_id)
    for item in _pages(
        state,
        lakeformation_client.list_permissions,
        "PrincipalResourcePermissions",
        CatalogId=catalog_id,
    ):
        principal = (item.get("Principal") or {}).get("DataLakePrincipalIdentifier")
        resource = item.get("Resource")
        if not principal or not isinstance(resource, dict) or not resource:
            continue
        yield HeldPermission(
            principal,
            resource_key(resource, catalog_id),
            frozenset(item.get("Permissions") or []),
            frozenset(item.get("PermissionsWithGrantOption") or []),
            resource,
        )


def read_state(lakeformation_client: Any, *, catalog_id: str) -> CurrentState:
    """Every explicit permission and LF-Tag of the catalog."""
    state = CurrentState(catalog_id)
    for held in list_permissions(lakeformation_client, catalog_id=catalog_id, state=state):
        perms, grantable = state.permissions.setdefault(
            (held.principal, held.resource), (set(), set())
        )
        perms.update(held.permissions)
        grantable.update(held.grantable)
        state.listed.setdefault((held.principal, held.resource), held.listed)
    for tag in _pages(state, lakeformation_client.list_lf_tags, "LFTags", CatalogId=catalog_id):
        tag_key = str(tag.get("TagKey", ""))
        state.tags[tag_key.casefold()] = (tag_key, set(tag.get("TagValues") or []))
    return state


def _get_resource_tags(state: CurrentState, lf: Any, resource: Resource) -> dict[str, Any] | None:
    """GetResourceLFTags of ``resource`` (directly assigned tags); None: it does not exist."""
    try:
        return counted_read(
            state,
            lf.get_resource_lf_tags,
            CatalogId=state.catalog_id,
            Resource=resource,
            ShowAssignedLFTags=True,
        )
    except ClientError as exc:
        if error_code(exc) == "EntityNotFoundException":
            return None
        raise


def resource_tags(
    state: CurrentState, lf: Any, resource: Resource, notes: list[str]
) -> dict[str, dict[str, str]]:
    """Tags directly assigned to ``resource``: {target: {casefold key: value}}.

    ``target`` is ``""`` for a database or table, the column name for columns.
    """
    resp = _get_resource_tags(state, lf, resource)
    if resp is None:
        notes.append(f"{describe_resource(resource)} does not exist: tagging it will fail")
        return {}

    def as_map(tags: list[dict[str, Any]] | None) -> dict[str, str]:
        return {
            str(t["TagKey"]).casefold(): str((t.get("TagValues") or [""])[0]) for t in tags or []
        }

    if "Database" in resource:
        return {"": as_map(resp.get("LFTagOnDatabase"))}
    if "Table" in resource:
        return {"": as_map(resp.get("LFTagsOnTable"))}
    return {
        str(c.get("Name")).lower(): as_map(c.get("LFTags"))
        for c in resp.get("LFTagsOnColumns") or []
    }


def data_lake_admins(state: CurrentState, lf: Any) -> set[str]:
    settings = counted_read(state, lf.get_data_lake_settings, CatalogId=state.catalog_id)
    listed = (settings.get("DataLakeSettings") or {}).get("DataLakeAdmins") or []
    return {str(p.get("DataLakePrincipalIdentifier")) for p in listed}


def assigned_tags(state: CurrentState, lf: Any, resource: Resource) -> list[dict[str, Any]]:
    """The tags assigned directly to a database or table, as Lake Formation lists them."""
    resp = _get_resource_tags(state, lf, resource) or {}
    tags = resp.get("LFTagOnDatabase") if "Database" in resource else resp.get("LFTagsOnTable")
    return [
        {"TagKey": t["TagKey"], "TagValues": list(t.get("TagValues") or [])} for t in tags or []
    ]
