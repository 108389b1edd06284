"""The consumer side of sharing, run in a domain account (``templates/domain.yaml``).

On ``AccessGranted`` (the producer granted this account Lake Formation permissions):

1. accept the producer's pending AWS RAM invitations (when the organisation does not share
   automatically there is one; accepting is what makes the shared resources visible);
2. create, or bring up to date, resource links in this account's Data Catalog: a grant on
   every table of a database becomes a database link ``<prefix><database>``; a grant on
   named tables becomes table links of the same names in a database ``<prefix><database>``
   (so queries read ``<prefix><database>.<table>`` either way);
3. grant the subscription's ``consumer_roles`` DESCRIBE on the links and, on the shared
   tables, the permissions this account received with the grant option (Lake Formation
   lets an account pass on only those);
4. report: the returned detail is the ``AccessLinked`` event the central account audits.

On ``AccessRevoked`` taking SELECT away, the links to the revoked tables are removed and
what this account granted its principals on them is revoked. Everything is idempotent: a
duplicate event finds the invitation accepted, the links in place (or gone) and the grants
held, and reports the same outcome with ``unchanged`` links.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from lakegov.aws import error_code, is_transient
from lakegov.errors import PermanentError, RetryableError
from lakegov.events import utc_now
from lakegov.governance.apply import BATCH_SIZE, in_batches
from lakegov.governance.current_state import list_permissions

ACCESS_EVENTS = ("AccessGranted", "AccessRevoked")
DEFAULT_LINK_PREFIX = "shared_"


@dataclass(frozen=True)
class SharedGrant:
    database: str
    table: str | None  # None: every table of the database
    permissions: frozenset[str]
    grantable: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessChange:
    """An ``AccessGranted`` or ``AccessRevoked`` event, parsed."""

    detail_type: str
    event_id: str
    producer_account: str
    consumer_account: str
    document: Mapping[str, Any]
    grants: tuple[SharedGrant, ...]
    consumer_roles: tuple[str, ...] = ()

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> AccessChange:
        detail_type = str(event.get("detail-type", ""))
        detail = event.get("detail") or {}
        if event.get("source") != "lakegov" or detail_type not in ACCESS_EVENTS:
            raise PermanentError(f"not an access event: {detail_type!r}")
        try:
            grants = tuple(
                SharedGrant(
                    str(g["database"]),
                    None if g.get("table") in (None, "*") else str(g["table"]),
                    frozenset(g.get("permissions") or []),
                    frozenset(g.get("grantable") or []),
                )
                for g in detail.get("grants") or []
            )
            return cls(
                detail_type,
                str(event.get("id", "")),
                str(detail["producer_account"]),
                str(detail["consumer_account"]),
                dict(detail.get("document") or {}),
                grants,
                tuple(detail.get("consumer_roles") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise PermanentError(f"{detail_type} detail is incomplete: {exc}") from exc


@dataclass
class _Report:
    change: AccessChange
    action: str
    invitations: list[str] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    granted: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def detail(self, domain: str) -> dict[str, Any]:
        done = [link for link in self.links if link["change"] != "failed"]
        if not self.problems:
            status = "DONE"
        elif done or self.granted or self.invitations:
            status = "PARTIAL"
        else:
            status = "FAILED"
        out: dict[str, Any] = {
            "consumer_account": self.change.consumer_account,
            "producer_account": self.change.producer_account,
            "action": self.action,
            "status": status,
            "source_event_id": self.change.event_id,
            "invitations_accepted": self.invitations,
            "links": done,
            "granted_roles": self.granted,
            "problems": self.problems,
            "reported_at": utc_now(),
        }
        if domain:
            out["domain"] = domain
        if self.change.document.get("bucket") and self.change.document.get("key"):
            out["document"] = dict(self.change.document)
        return out


def _retry_or_note(exc: ClientError, report: _Report, what: str) -> None:
    """Transient errors are raised (the event is retried, then dead-lettered); others are
    reported and the rest of the work goes on."""
    if is_transient(exc):
        raise RetryableError(f"{what}: {error_code(exc)}") from exc
    report.problems.append(f"{what}: {error_code(exc) or exc}")


# -- RAM ---------------------------------------------------------------------------------
def accept_invitations(ram: Any, producer_account: str, report: _Report) -> None:
    """Accept the producer's pending RAM invitations (none pending: nothing to do)."""
    pending: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"nextToken": token} if token else {}
        try:
            page = ram.get_resource_share_invitations(**kwargs)
        except ClientError as exc:
            _retry_or_note(exc, report, "listing RAM invitations")
            return
        pending += [
            i
            for i in page.get("resourceShareInvitations") or []
            if i.get("senderAccountId") == producer_account and i.get("status") == "PENDING"
        ]
        token = page.get("nextToken")
        if not token:
            break
    for invitation in pending:
        arn = invitation["resourceShareInvitationArn"]
        try:
            ram.accept_resource_share_invitation(resourceShareInvitationArn=arn)
        except ClientError as exc:
            if error_code(exc) == "ResourceShareInvitationAlreadyAcceptedException":
                continue  # a duplicate event got there first
            _retry_or_note(exc, report, f"accepting {arn}")
            continue
        report.invitations.append(arn)


# -- links -------------------------------------------------------------------------------
def _target_database(producer: str, database: str) -> dict[str, str]:
    return {"CatalogId": producer, "DatabaseName": database}


def _database_link(glue: Any, name: str, target: dict[str, str], report: _Report) -> str:
    """Create the database link ``name``; returns its change."""
    try:
        glue.create_database(DatabaseInput={"Name": name, "TargetDatabase": target})
        return "created"
    except ClientError as exc:
        if error_code(exc) != "AlreadyExistsException":
            _retry_or_note(exc, report, f"creating database link {name}")
            return "failed"
    current = glue.get_database(Name=name)["Database"]
    held = current.get("TargetDatabase")
    if held == target:
        return "unchanged"
    if not held:
        report.problems.append(
            f"database {name} exists and is not a resource link: its table links are kept "
            f"and no database link to {target['DatabaseName']} is made"
        )
        return "failed"
    # UpdateDatabase on a link follows it and updates the target database: a link is
    # pointed elsewhere by deleting and making it again (AWS's resource-link rules)
    glue.delete_database(Name=name)
    glue.create_database(DatabaseInput={"Name": name, "TargetDatabase": target})
    return "updated"


def _table_link(
    glue: Any, database: str, table: str, target: dict[str, str], report: _Report
) -> str:
    """Create the table link ``database.table`` (its database made when missing)."""
    try:
        existing = glue.get_database(Name=database)["Database"]
    except ClientError as exc:
        if error_code(exc) != "EntityNotFoundException":
            _retry_or_note(exc, report, f"reading database {database}")
            return "failed"
        existing = None
    if existing is None:
        try:
            glue.create_database(
                DatabaseInput={
                    "Name": database,
                    "Description": f"lakegov resource links to {target['DatabaseName']} "
                    f"of account {target['CatalogId']}",
                }
            )
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                _retry_or_note(exc, report, f"creating database {database}")
                return "failed"
    elif existing.get("TargetDatabase") == _target_database(
        target["CatalogId"], target["DatabaseName"]
    ):
        return "unchanged"  # the database link already shows every table
    table_input = {"Name": table, "TargetTable": target}
    try:
        glue.create_table(DatabaseName=database, TableInput=table_input)
        return "created"
    except ClientError as exc:
        if error_code(exc) != "AlreadyExistsException":
            _retry_or_note(exc, report, f"creating table link {database}.{table}")
            return "failed"
    current = glue.get_table(DatabaseName=database, Name=table)["Table"]
    if current.get("TargetTable") == target:
        return "unchanged"
    if not current.get("TargetTable"):
        report.problems.append(f"table {database}.{table} exists and is not a resource link")
        return "failed"
    # UpdateTable on a link updates the target table: delete the link, make it again
    glue.delete_table(DatabaseName=database, Name=table)
    glue.create_table(DatabaseName=database, TableInput=table_input)
    return "updated"


def _grant_roles(
    lakeformation: Any,
    change: AccessChange,
    grant: SharedGrant,
    link: dict[str, Any],
    account_id: str,
    report: _Report,
) -> None:
    if not change.consumer_roles:
        return
    if not grant.grantable:
        report.problems.append(
            f"{grant.database}.{grant.table or '*'}: nothing was shared with the grant option, "
            "so no role of this account can be granted on it"
        )
        return
    if grant.table is None:
        link_resource: dict[str, Any] = {
            "Database": {"CatalogId": account_id, "Name": link["database"]}
        }
        target: dict[str, Any] = {
            "Table": {
                "CatalogId": change.producer_account,
                "DatabaseName": grant.database,
                "TableWildcard": {},
            }
        }
    else:
        link_resource = {
            "Table": {
                "CatalogId": account_id,
                "DatabaseName": link["database"],
                "Name": grant.table,
            }
        }
        target = {
            "Table": {
                "CatalogId": change.producer_account,
                "DatabaseName": grant.database,
                "Name": grant.table,
            }
        }
    entries: list[dict[str, Any]] = []
    for index, role in enumerate(change.consumer_roles):
        if f":{account_id}:" not in role:
            report.problems.append(f"{role} is not a role of this account: not granted")
            continue
        principal = {"DataLakePrincipalIdentifier": role}
        entries += [
            {
                "Id": f"l{index}",
                "Principal": principal,
                "Resource": link_resource,
                "Permissions": ["DESCRIBE"],
            },
            {
                "Id": f"t{index}",
                "Principal": principal,
                "Resource": target,
                "Permissions": sorted(grant.grantable),
            },
        ]
    failed = _batch_call(
        lakeformation.batch_grant_permissions, account_id, entries, report, "granting the roles"
    )
    for entry in entries:
        failure = failed.get(entry["Id"])
        if failure:
            error = failure.get("Error") or {}
            report.problems.append(
                f"granting {entry['Principal']['DataLakePrincipalIdentifier']}: "
                f"{error.get('ErrorCode')}: {error.get('ErrorMessage', '')}"
            )
        elif failure is None and entry["Id"].startswith("t"):
            report.granted.append(
                {
                    "role": entry["Principal"]["DataLakePrincipalIdentifier"],
                    "database": link["database"],
                    "table": grant.table,
                    "permissions": entry["Permissions"],
                }
            )


def link_shared_access(
    change: AccessChange,
    *,
    ram: Any,
    glue: Any,
    lakeformation: Any,
    account_id: str,
    link_prefix: str = DEFAULT_LINK_PREFIX,
    domain: str = "",
) -> dict[str, Any]:
    """Carry out an ``AccessGranted``; returns the ``AccessLinked`` detail."""
    if change.consumer_account != account_id:
        raise PermanentError(
            f"the access was granted to account {change.consumer_account}, not to this one "
            f"({account_id})"
        )
    report = _Report(change, "linked")
    accept_invitations(ram, change.producer_account, report)
    whole = {g.database for g in change.grants if g.table is None}
    for grant in change.grants:
        name = f"{link_prefix}{grant.database}"
        if grant.table is None:
            target: dict[str, str] = _target_database(change.producer_account, grant.database)
            changed = _database_link(glue, name, target, report)
        elif grant.database in whole:
            continue  # the database link covers it
        else:
            target = {
                **_target_database(change.producer_account, grant.database),
                "Name": grant.table,
            }
            changed = _table_link(glue, name, grant.table, target, report)
        link = {"database": name, "table": grant.table, "target": target, "change": changed}
        report.links.append(link)
        if changed != "failed":
            _grant_roles(lakeformation, change, grant, link, account_id, report)
    return report.detail(domain)


def _batch_call(
    call: Any, account_id: str, entries: list[dict[str, Any]], report: _Report, what: str
) -> dict[str, dict[str, Any]]:
    """``BatchGrantPermissions``/``BatchRevokePermissions`` of ``entries``, at most
    ``BATCH_SIZE`` a call; returns the failures by entry id (a call refused as a whole is
    noted in the report and its entries are given as failed with no error)."""
    failed: dict[str, dict[str, Any]] = {}
    for batch in in_batches(entries, BATCH_SIZE):
        try:
            response = call(CatalogId=account_id, Entries=batch)
        except ClientError as exc:
            _retry_or_note(exc, report, what)
            failed.update({entry["Id"]: {} for entry in batch})
            continue
        for failure in response.get("Failures") or []:
            failed[str((failure.get("RequestEntry") or {}).get("Id"))] = failure
    return failed


def _revoke_held_on(
    lakeformation: Any,
    account_id: str,
    matches: Callable[[Mapping[str, Any]], bool],
    report: _Report,
) -> None:
    """Revoke what this account granted its principals on resources ``matches`` accepts."""
    entries: list[dict[str, Any]] = []
    for held in list_permissions(lakeformation, catalog_id=account_id):
        if matches(held.listed):
            entries.append(
                {
                    "Id": str(len(entries)),
                    "Principal": {"DataLakePrincipalIdentifier": held.principal},
                    "Resource": held.listed,
                    "Permissions": sorted(held.permissions),
                    "PermissionsWithGrantOption": sorted(held.grantable),
                }
            )
    failed = _batch_call(
        lakeformation.batch_revoke_permissions,
        account_id,
        entries,
        report,
        "revoking the consumer roles' grants",
    )
    for entry in entries:
        error = (failed.get(entry["Id"]) or {}).get("Error")
        if error:
            report.problems.append(
                f"revoking {entry['Principal']['DataLakePrincipalIdentifier']}: "
                f"{error.get('ErrorCode')}: {error.get('ErrorMessage', '')}"
            )


def unlink_shared_access(
    change: AccessChange,
    *,
    glue: Any,
    lakeformation: Any,
    account_id: str,
    link_prefix: str = DEFAULT_LINK_PREFIX,
    domain: str = "",
) -> dict[str, Any]:
    """Carry out an ``AccessRevoked``: links to what is no longer readable go; returns the
    ``AccessLinked`` detail."""
    if change.consumer_account != account_id:
        raise PermanentError(
            f"the access was revoked from account {change.consumer_account}, not this one"
        )
    report = _Report(change, "unlinked")
    revoked_on: list[Callable[[Mapping[str, Any]], bool]] = []
    for grant in change.grants:
        if "SELECT" not in grant.permissions and "ALL" not in grant.permissions:
            continue  # still readable: the links stay
        name = f"{link_prefix}{grant.database}"
        target_db = _target_database(change.producer_account, grant.database)
        removed = "absent"
        try:
            if grant.table is None:
                current = glue.get_database(Name=name)["Database"]
                if current.get("TargetDatabase") == target_db:
                    glue.delete_database(Name=name)
                    removed = "removed"
            else:
                current = glue.get_table(DatabaseName=name, Name=grant.table)["Table"]
                if current.get("TargetTable") == {**target_db, "Name": grant.table}:
                    glue.delete_table(DatabaseName=name, Name=grant.table)
                    removed = "removed"
        except ClientError as exc:
            if error_code(exc) != "EntityNotFoundException":
                _retry_or_note(exc, report, f"removing the link {name}")
                continue

        def on_it(
            resource: Mapping[str, Any], grant: SharedGrant = grant, name: str = name
        ) -> bool:
            body = resource.get("Table") or resource.get("TableWithColumns") or {}
            if not body:
                database = resource.get("Database") or {}
                return grant.table is None and database.get("Name") == name
            producer_side = (
                body.get("CatalogId") == change.producer_account
                and body.get("DatabaseName") == grant.database
            )
            link_side = body.get("CatalogId") == account_id and body.get("DatabaseName") == name
            return (producer_side or link_side) and (
                grant.table is None or body.get("Name") == grant.table
            )

        revoked_on.append(on_it)
        report.links.append(
            {"database": name, "table": grant.table, "target": target_db, "change": removed}
        )
    if revoked_on:  # one listing, each held grant revoked once however many grants match it
        _revoke_held_on(
            lakeformation,
            account_id,
            lambda resource: any(on_it(resource) for on_it in revoked_on),
            report,
        )
    return report.detail(domain)
