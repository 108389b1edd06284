"""The engine and the CLI against moto's Lake Formation (in-process)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.governance.conftest import ACCOUNT, held

from lakegov.errors import InvalidDocument
from lakegov.governance import apply, cli, load_and_validate, plan, validate

DATA = Path(__file__).parents[2] / "unit" / "governance" / "data"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/analyst"


def original_text(name: str) -> str:
    return (DATA / name).read_text().replace("arn:aws:iam::XXX:", f"arn:aws:iam::{ACCOUNT}:")


def test_original_file_applies_and_reapplies_to_nothing(lakeformation: Any) -> None:
    """Given the post's final file (stray spaces, account filled in), when applied on moto,
    then the tag exists, the grants are listed, and re-applying makes no write call."""
    doc = load_and_validate(original_text("original_final.json"), source="lf_tags_metadata.json")
    result = apply(plan(doc, lakeformation, catalog_id=ACCOUNT), lakeformation)
    assert result.ok and result.write_calls == 2

    tags = lakeformation.list_lf_tags()["LFTags"]
    assert [(t["TagKey"], t["TagValues"]) for t in tags] == [("blog", ["bdb-4834"])]
    grants = held(lakeformation)
    assert len(grants) == 3 and all(p == {"SELECT", "DESCRIBE"} for p in grants.values())
    assert any('"TableWildcard": {}' in r and "bdb4834_formatted_stg" in r for _, r in grants)

    again = plan(doc, lakeformation, catalog_id=ACCOUNT)
    assert again.to_dict() == {"changes": []}
    assert apply(again, lakeformation).write_calls == 0


def test_a_file_with_one_bad_entry_changes_nothing(lakeformation: Any) -> None:
    """All or nothing: two good entries and one bad one -> refused, Lake Formation untouched."""
    document = json.loads(original_text("original_final.json"))
    document.append({**document[1], "table_permissions": ["CREATE_TABLE"]})
    with pytest.raises(InvalidDocument) as info:
        validate(document)
    assert [i.path for i in info.value.issues if i.severity == "error"] == [
        "$[2].table_permissions[0]"
    ]
    assert lakeformation.list_permissions()["PrincipalResourcePermissions"] == []
    assert lakeformation.list_lf_tags()["LFTags"] == []


def test_revoke_removes_exactly_what_it_names(lakeformation: Any) -> None:
    grant = [
        {
            "role_arn": ROLE,
            "access_type": "GRANT",
            "table_permissions": ["SELECT", "DESCRIBE"],
            "named_data_catalog": [
                {"Database": "sales", "Table": "orders"},
                {"Database": "sales", "Table": "*"},
            ],
        }
    ]
    apply(plan(validate(grant), lakeformation, catalog_id=ACCOUNT), lakeformation)
    revoke = [
        {
            **grant[0],
            "access_type": "REVOKE",
            "table_permissions": ["SELECT"],
            "named_data_catalog": [{"Database": "sales", "Table": "orders"}],
        }
    ]
    the_plan = plan(validate(revoke), lakeformation, catalog_id=ACCOUNT)
    assert [c.describe() for c in the_plan.changes] == [
        f"revoke SELECT on table sales.orders from {ROLE}"
    ]
    assert apply(the_plan, lakeformation).ok
    after = {r: p for (_, r), p in held(lakeformation).items()}
    assert sorted(after.values(), key=sorted) == [{"DESCRIBE"}, {"DESCRIBE", "SELECT"}]
    assert plan(validate(revoke), lakeformation, catalog_id=ACCOUNT).empty


def test_forty_five_grants_take_three_batch_calls(lakeformation: Any) -> None:
    doc = [
        {
            "role_arn": ROLE,
            "access_type": "GRANT",
            "table_permissions": ["SELECT"],
            "named_data_catalog": [{"Database": "sales", "Table": f"t{i}"} for i in range(45)],
        }
    ]
    result = apply(plan(validate(doc), lakeformation, catalog_id=ACCOUNT), lakeformation)
    assert result.calls == {"batch_grant_permissions": 3} and len(result.outcomes) == 45
    assert len(held(lakeformation)) == 45
    assert plan(validate(doc), lakeformation, catalog_id=ACCOUNT).empty


# -- CLI ----------------------------------------------------------------------------------


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="lakegov")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "lf_tags_metadata.json"
    good.write_text(original_text("original_final.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            [
                {
                    "role_arn": "arn:aws:iam::XXX:role/r",
                    "access_type": "GRANT",
                    "table_permissions": ["CREATE_TABLE"],
                    "named_data_catalog": [{"Database": "s", "Table": "t"}],
                }
            ]
        )
    )
    return {"good": good, "bad": bad}


def test_cli_validate_reports_every_error_as_file_path_message(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("validate", str(files["good"]), str(files["bad"])) == 1
    out, err = capsys.readouterr()
    assert f"{files['good']}: valid (2 entries, 4 warnings)" in out
    assert f"{files['good']}: $[1].named_data_catalog[0].Database: warning: leading/trailing" in err
    assert f"{files['bad']}: $[0].role_arn: expected an IAM role" in err
    assert (
        f"{files['bad']}: $[0].table_permissions[0]: CREATE_TABLE is not a table permission" in err
    )
    assert run_cli("validate", str(files["good"])) == 0


def test_cli_plan_json_then_apply_then_empty_plan(
    lakeformation: Any, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("plan", "--json", str(files["good"])) == 0
    planned = json.loads(capsys.readouterr().out)
    assert [c["action"] for c in planned["changes"]] == ["create_lf_tag", "grant", "grant", "grant"]

    assert run_cli("apply", str(files["good"])) == 0
    out = capsys.readouterr().out
    assert "4 change(s) done, 0 failed, 2 write call(s)" in out

    assert run_cli("plan", "--json", str(files["good"])) == 0
    assert json.loads(capsys.readouterr().out) == {"changes": []}
    assert run_cli("plan", str(files["good"])) == 0
    assert "No changes" in capsys.readouterr().out


def test_cli_apply_refuses_an_invalid_file_without_calling_aws(
    lakeformation: Any, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("apply", str(files["bad"])) == 1
    assert "$[0].role_arn" in capsys.readouterr().err
    assert lakeformation.list_permissions()["PrincipalResourcePermissions"] == []


def test_cli_missing_file_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert run_cli("validate", str(tmp_path / "nope.json")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read" in err[0]


def test_a_grant_on_a_table_glue_lacks_fails_that_change_alone(lakeformation: Any) -> None:
    """Lake Formation refuses a grant on a table that is not in the catalog
    (EntityNotFoundException), in a batch as a failure of that entry alone."""
    from lakegov.local import moto_lakeformation

    moto_lakeformation.install()
    doc = [
        {
            "role_arn": ROLE,
            "access_type": "GRANT",
            "table_permissions": ["SELECT"],
            "named_data_catalog": [
                {"Database": "sales", "Table": "orders"},
                {"Database": "sales", "Table": "nope"},
                {"Database": "nowhere", "Table": "*"},
            ],
        }
    ]
    result = apply(plan(validate(doc), lakeformation, catalog_id=ACCOUNT), lakeformation)
    assert sorted((o.change.describe(), o.error_code) for o in result.failed) == [
        (f"grant SELECT on table nowhere.* to {ROLE}", "EntityNotFoundException"),
        (f"grant SELECT on table sales.nope to {ROLE}", "EntityNotFoundException"),
    ]
    assert [json.loads(r) for _, r in held(lakeformation)] == [
        {"Table": {"CatalogId": ACCOUNT, "DatabaseName": "sales", "Name": "orders"}}
    ]
