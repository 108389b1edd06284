"""Which kind of document lives under which config-bucket prefix."""

from __future__ import annotations

from lakegov.governance.kind import governance_kind
from lakegov.metadata.kinds import MetadataKind
from lakegov.products.documents import product_kind


def metadata_kinds() -> dict[str, MetadataKind]:
    """Prefix -> kind, for every document the config bucket accepts."""
    kinds: list[MetadataKind] = [governance_kind(), product_kind()]
    return {kind.prefix: kind for kind in kinds}
