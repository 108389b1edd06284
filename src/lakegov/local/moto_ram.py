"""AWS RAM's side of Lake Formation cross-account grants, added to moto.

On AWS, granting a Data Catalog resource to another account (Lake Formation's cross-account
version 3) puts it in a RAM resource share of the producer account, ``LakeFormation-V3-...``;
outside an organisation that shares automatically, the consumer account receives an
invitation it must accept. moto 5.2 stores grants to accounts but makes no share, and its
RAM has no ``GetResourceShareInvitations`` or ``AcceptResourceShareInvitation``.

:func:`install` makes a grant to another account create (once per producer and consumer)
a share with a PENDING invitation for the consumer, and gives moto's RAM the two
invitation operations with AWS's answers: invitations are listed to their receiver (and
sender), filtered by ARN or share ARN; accepting one of another account, or one no longer
pending, fails as on AWS. Idempotent, for the in-process mock and the embedded server.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from lakegov.local.moto_patch import once

_ACCOUNT = re.compile(r"^\d{12}$")
_STORE = "lakegov_invitations"


@once
def install() -> None:
    """Add the share and invitation behaviour to moto (once per process)."""
    from moto.lakeformation import models as lf_models
    from moto.ram import responses, urls

    original = lf_models.LakeFormationBackend.grant_permissions

    def grant_permissions(
        self: Any, catalog_id: str, principal: dict[str, str], *args: Any, **kwargs: Any
    ) -> None:
        original(self, catalog_id, principal, *args, **kwargs)
        grantee = str((principal or {}).get("DataLakePrincipalIdentifier", ""))
        if _ACCOUNT.match(grantee) and grantee != self.account_id:
            _share(self.account_id, self.region_name, grantee)

    lf_models.LakeFormationBackend.grant_permissions = grant_permissions  # type: ignore[method-assign]
    response_cls = responses.ResourceAccessManagerResponse
    response_cls.get_resource_share_invitations = _response_list  # type: ignore[attr-defined]
    response_cls.accept_resource_share_invitation = _response_accept  # type: ignore[attr-defined]
    urls.url_paths["{0}/getresourceshareinvitations$"] = (
        responses.ResourceAccessManagerResponse.dispatch
    )
    urls.url_paths["{0}/acceptresourceshareinvitation$"] = (
        responses.ResourceAccessManagerResponse.dispatch
    )


def _invitations(account: str, region: str) -> list[dict[str, Any]]:
    from moto.ram.models import ram_backends

    backend = ram_backends[account][region]
    if not hasattr(backend, _STORE):
        setattr(backend, _STORE, [])
    store: list[dict[str, Any]] = getattr(backend, _STORE)
    return store


def _share(producer: str, region: str, consumer: str) -> None:
    """The producer's Lake Formation share with ``consumer``, invited once."""
    received = _invitations(consumer, region)
    if any(i["senderAccountId"] == producer for i in received):
        return
    share_id = str(uuid.uuid4())
    invitation = {
        "resourceShareInvitationArn": (
            f"arn:aws:ram:{region}:{producer}:resource-share-invitation/{uuid.uuid4()}"
        ),
        "resourceShareName": f"LakeFormation-V3-{share_id[:8].upper()}",
        "resourceShareArn": f"arn:aws:ram:{region}:{producer}:resource-share/{share_id}",
        "senderAccountId": producer,
        "receiverAccountId": consumer,
        "invitationTimestamp": datetime.now(UTC).timestamp(),
        "status": "PENDING",
    }
    received.append(invitation)
    _invitations(producer, region).append(invitation)  # the sender lists it too


def _error(code: str, message: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError(code, message)


def _response_list(self: Any) -> str:
    params = self.request_params
    arns = set(params.get("resourceShareInvitationArns") or [])
    shares = set(params.get("resourceShareArns") or [])
    out = [
        dict(i)
        for i in _invitations(self.current_account, self.region)
        if (not arns or i["resourceShareInvitationArn"] in arns)
        and (not shares or i["resourceShareArn"] in shares)
    ]
    return json.dumps({"resourceShareInvitations": out})


def _response_accept(self: Any) -> str:
    arn = str(self.request_params.get("resourceShareInvitationArn", ""))
    for invitation in _invitations(self.current_account, self.region):
        if invitation["resourceShareInvitationArn"] != arn:
            continue
        if invitation["receiverAccountId"] != self.current_account:
            raise _error(
                "OperationNotPermittedException", "only the receiver may accept an invitation"
            )
        if invitation["status"] == "ACCEPTED":
            raise _error(
                "ResourceShareInvitationAlreadyAcceptedException",
                f"invitation {arn} is already accepted",
            )
        if invitation["status"] != "PENDING":
            raise _error(
                "ResourceShareInvitationExpiredException",
                f"invitation {arn} is {invitation['status']}",
            )
        invitation["status"] = "ACCEPTED"
        return json.dumps({"resourceShareInvitation": dict(invitation)})
    raise _error("UnknownResourceException", f"no invitation {arn}")
