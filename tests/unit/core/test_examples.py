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


def test_the_validate_command_takes_every_kind_by_its_folder(tmp_path, capsys):
    from lakegov.cli import main

    for path in EXAMPLES:
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    bad = tmp_path / "datasets" / "bad.json"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"match": {"prefix": "x/"}, "csv": {"delimiter": "::"}}))
    assert main(["validate", str(bad)]) == 1
    assert f"{bad}: $.csv.delimiter:" in capsys.readouterr().err
    # the same file read as a governance document fails on other grounds
    assert main(["validate", "--kind", "governance", str(bad)]) == 1
