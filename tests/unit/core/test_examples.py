"""Every example document is valid for the kind of its folder (the README points at them)."""

import json

import pytest
from tests.conftest import ROOT

from lakegov.metadata.registry import metadata_kinds

EXAMPLES = sorted(
    p
    for folder in ("governance", "datasets", "products", "subscriptions")
    for p in (ROOT / "examples" / folder).glob("*.json")
)


def test_there_is_an_example_of_every_kind():
    assert {p.parent.name for p in EXAMPLES} == {
        "governance",
        "datasets",
        "products",
        "subscriptions",
    }
    assert set(metadata_kinds()) == {"governance/", "datasets/", "products/", "subscriptions/"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_example_validates(path):
    kind = metadata_kinds()[f"{path.parent.name}/"]
    issues = kind.validate(json.loads(path.read_text()), f"{path.parent.name}/{path.name}")
    assert [i for i in issues if i.severity == "error"] == []
