"""Which kind of document lives under which config-bucket prefix."""

from __future__ import annotations

from lakegov.governance.documents import governance_kind
from lakegov.ingest.documents import dataset_kind
from lakegov.mesh.subscriptions import subscription_kind
from lakegov.metadata.kinds import MetadataKind
from lakegov.products.documents import product_kind


def metadata_kinds() -> dict[str, MetadataKind]:
    """Prefix -> kind, for every document the config bucket accepts."""
    governance = governance_kind()
    kinds: list[MetadataKind] = [
        governance,
        dataset_kind(),
        product_kind(),
        # a subscription asking for read access becomes a governance document, validated
        # and applied by the same engine
        subscription_kind(validate_grant=governance.validate, apply_grant=governance.apply),
    ]
    return {kind.prefix: kind for kind in kinds}
