"""Which kind of document lives under which config-bucket prefix."""

from __future__ import annotations

from lakegov.governance.kind import governance_kind
from lakegov.metadata.kinds import MetadataKind


def metadata_kinds() -> dict[str, MetadataKind]:
    """Prefix -> kind, for every document the config bucket accepts."""
    kinds: list[MetadataKind] = [governance_kind()]
    return {kind.prefix: kind for kind in kinds}
