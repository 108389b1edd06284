"""Planning and applying against an in-memory Lake Formation (AWS semantics, scripted faults)."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.unit.governance.conftest import ROLE, entry, original
from tests.unit.governance.fakes import ACCOUNT, FakeLakeFormation

from lakegov.governance import Plan, apply, detect_drift, plan, validate
from lakegov.governance.model import resource_key, table_resource

OTHER = f"arn:aws:iam::{ACCOUNT}:role/engineer"


def run(document: Any, lf: FakeLakeFormation, sleeps: list[float] | None = None, **kw: Any):
    the_plan = plan(validate(document), lf, catalog_id=ACCOUNT)
    result = apply(
        the_plan,
        lf,
        sleep=(sleeps if sleeps is not None else []).append,
        rng=random.Random(0),
        **kw,
    )
    return the_plan, result


RICH = {
    "version": 1,
    "lf_tags": [{"TagKey": "domain", "TagValues": ["sales", "finance"]}],
    "assignments": [
        {"Database": "sales", "lf_tags": [{"TagKey": "domain", "TagValues": ["sales"]}]},
        {
            "Database": "sales",
            "Table": "orders",
            "lf_tags": [{"TagKey": "tier", "TagValues": ["gold"]}],
        },
        {
            "Database": "sales",
            "Table": "customers",
            "Columns": ["email", "phone"],
            "lf_tags": [{"TagKey": "pii", "TagValues": ["true"]}],
        },
    ],
    "data_cells_filters": [
        {"Name": "fr", "Database": "sales", "Table": "orders", "RowFilter": "country = 'FR'"}
    ],
    "entries": [
        {
            "role_arn": ROLE,
            "access_type": "GRANT",
            "lf_tags": [{"TagKey": "domain", "TagValues": ["sales"]}],
            "table_permissions": ["SELECT", "DESCRIBE"],
            "grant_option": ["DESCRIBE"],
        },
        {
            "role_arn": ROLE,
            "access_type": "GRANT",
            "table_permissions": ["SELECT"],
            "named_data_catalog": [
                {"Database": "sales", "Table": "customers", "ExcludedColumns": ["email"]},
                {"Database": "sales", "Table": "orders", "DataCellsFilter": "fr"},
            ],
        },
        {
            "principal": "210987654321",
            "access_type": "GRANT",
            "database_permissions": ["DESCRIBE"],
            "named_data_catalog": [{"Database": "sales"}],
        },
    ],
}


def test_original_file_plans_tag_then_grants_and_reapplies_to_nothing(
    lf: FakeLakeFormation,
) -> None:
    """Given the post's final file and an empty Lake Formation, when planned and applied,
    then the tag is created, three grants made in one batch, and a second plan is empty."""
    the_plan, result = run(original("original_final.json"), lf)
    assert [c.action for c in the_plan.changes] == ["create_lf_tag", "grant", "grant", "grant"]
    assert result.ok and result.write_calls == 2
    assert result.calls == {"create_lf_tag": 1, "batch_grant_permissions": 1}
    assert lf.tags == {"blog": ["bdb-4834"]}
    wildcard = table_resource("bdb4834_formatted_stg", "*", ACCOUNT)
    principal = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/XX"
    assert lf.held(principal, wildcard) == {"SELECT", "DESCRIBE"}

    again = plan(validate(original("original_final.json")), lf, catalog_id=ACCOUNT)
    assert again.to_dict() == {"changes": []}
    assert apply(again, lf).write_calls == 0


def test_rich_document_round_trip_is_idempotent(lf: FakeLakeFormation) -> None:
    """Tags, assignments (database, table, columns), a data cells filter, column grants,
    grant options and a cross-account grant all apply, and re-planning finds nothing."""
    the_plan, result = run(RICH, lf)
    assert result.ok, [o.to_dict() for o in result.failed]
    counts = the_plan.counts()
    assert counts == {
        "create_lf_tag": 3,
        "create_data_cells_filter": 1,
        "assign_lf_tags": 3,
        "grant": 4,
    }
    assert lf.resource_tags  # tags really attached
    assert ("123456789012", "sales", "orders", "fr") in lf.filters
    assert plan(validate(RICH), lf, catalog_id=ACCOUNT).empty


def test_plan_is_json_and_round_trips(lf: FakeLakeFormation) -> None:
    the_plan = plan(validate(RICH), lf, catalog_id=ACCOUNT)
    text = json.dumps(the_plan.to_dict())
    again = Plan.from_dict(json.loads(text), catalog_id=ACCOUNT)
    assert again.to_dict() == the_plan.to_dict()
    assert all({"action"} <= set(c) for c in the_plan.to_dict()["changes"])
    grant = next(c for c in the_plan.to_dict()["changes"] if c["action"] == "grant")
    assert {"principal", "resource", "permissions", "permissions_with_grant_option"} <= set(grant)


def test_existing_tag_is_extended_not_recreated(lf: FakeLakeFormation) -> None:
    lf.tags["domain"] = ["sales"]
    the_plan = plan(
        validate({"version": 1, "lf_tags": [{"TagKey": "domain", "TagValues": ["sales", "hr"]}]}),
        lf,
        catalog_id=ACCOUNT,
    )
    assert [c.to_dict() for c in the_plan.changes] == [
        {"action": "add_lf_tag_values", "tag_key": "domain", "tag_values": ["hr"]}
    ]
    assert apply(the_plan, lf).ok and lf.tags["domain"] == ["sales", "hr"]


def test_tag_values_beyond_fifty_are_added_fifty_at_a_time(lf: FakeLakeFormation) -> None:
    values = [f"v{i:03}" for i in range(120)]
    _, result = run({"version": 1, "lf_tags": [{"TagKey": "big", "TagValues": values}]}, lf)
    assert result.calls == {"create_lf_tag": 1, "update_lf_tag": 2}
    assert sorted(lf.tags["big"]) == values


def test_revoke_removes_exactly_what_it_names(lf: FakeLakeFormation) -> None:
    """Given SELECT, INSERT, DESCRIBE on orders and SELECT on customers, a REVOKE of
    SELECT on orders leaves INSERT and DESCRIBE on orders and SELECT on customers."""
    orders = table_resource("sales", "orders", ACCOUNT)
    customers = table_resource("sales", "customers", ACCOUNT)
    lf.seed_grant(ROLE, orders, ["SELECT", "INSERT", "DESCRIBE"], ["SELECT"])
    lf.seed_grant(ROLE, customers, ["SELECT"])
    lf.seed_grant(OTHER, orders, ["SELECT"])
    the_plan, result = run([entry(access_type="REVOKE")], lf)
    assert [c.to_dict()["permissions"] for c in the_plan.changes] == [["SELECT"]]
    assert the_plan.changes[0].permissions_with_grant_option == ["SELECT"]
    assert result.ok
    assert lf.held(ROLE, orders) == {"INSERT", "DESCRIBE"}
    assert lf.held(ROLE, customers) == {"SELECT"}
    assert lf.held(OTHER, orders) == {"SELECT"}
    assert plan(validate([entry(access_type="REVOKE")]), lf, catalog_id=ACCOUNT).empty


def test_select_reported_as_table_with_columns_counts_as_granted(lf: FakeLakeFormation) -> None:
    """Lake Formation lists SELECT on a table as TableWithColumns + ColumnWildcard: in sync."""
    lf.report_select_as_columns = True
    lf.seed_grant(ROLE, table_resource("sales", "orders", ACCOUNT), ["SELECT", "DESCRIBE"])
    assert plan(
        validate([entry(table_permissions=["SELECT", "DESCRIBE"])]), lf, catalog_id=ACCOUNT
    ).empty


def test_all_tables_as_lake_formation_lists_it_is_the_table_wildcard() -> None:
    """ListPermissions names SELECT on every table of a database ALL_TABLES (as columns
    with a ColumnWildcard, or as a table): both are the TableWildcard a document asks for."""
    wildcard = resource_key(table_resource("sales", "*", ACCOUNT), ACCOUNT)
    listed_as_columns = {
        "TableWithColumns": {
            "CatalogId": ACCOUNT,
            "DatabaseName": "sales",
            "Name": "ALL_TABLES",
            "ColumnWildcard": {},
        }
    }
    listed_as_table = {"Table": {"DatabaseName": "sales", "Name": "ALL_TABLES"}}
    assert resource_key(listed_as_columns, ACCOUNT) == wildcard
    assert resource_key(listed_as_table, ACCOUNT) == wildcard
    assert resource_key(table_resource("sales", "all_tables", ACCOUNT), ACCOUNT) != wildcard


def test_select_on_all_tables_is_in_sync_and_can_be_revoked(lf: FakeLakeFormation) -> None:
    """Given SELECT and DESCRIBE granted on sales.* (listed by LF as ALL_TABLES columns),
    re-granting plans nothing, drift sees nothing, and a REVOKE of SELECT removes it."""
    wildcard = [{"Database": "sales", "Table": "*"}]
    grant = entry(named_data_catalog=wildcard, table_permissions=["SELECT", "DESCRIBE"])
    _, result = run([grant], lf)
    assert result.ok
    listed = lf.list_permissions(CatalogId=ACCOUNT)["PrincipalResourcePermissions"]
    assert any(
        p["Resource"].get("TableWithColumns", {}).get("Name") == "ALL_TABLES" for p in listed
    )
    assert plan(validate([grant]), lf, catalog_id=ACCOUNT).empty
    assert not detect_drift([validate([grant])], lf, catalog_id=ACCOUNT).drifted

    revoke = entry(named_data_catalog=wildcard, access_type="REVOKE")
    the_plan, result = run([revoke], lf)
    assert [(c.action, c.permissions) for c in the_plan.changes] == [("revoke", ["SELECT"])]
    assert result.ok and lf.held(ROLE, table_resource("sales", "*", ACCOUNT)) == {"DESCRIBE"}


def test_missing_grant_option_alone_is_planned(lf: FakeLakeFormation) -> None:
    lf.seed_grant(ROLE, table_resource("sales", "orders", ACCOUNT), ["SELECT"])
    (change,) = plan(validate([entry(grant_option=True)]), lf, catalog_id=ACCOUNT).changes
    assert (change.permissions, change.permissions_with_grant_option) == (["SELECT"], ["SELECT"])


def forty_five_grants() -> list[dict[str, Any]]:
    return [
        entry(named_data_catalog=[{"Database": "sales", "Table": f"t{i:02}"}]) for i in range(45)
    ]


def test_grants_are_batched_twenty_per_call(lf: FakeLakeFormation) -> None:
    _, result = run(forty_five_grants(), lf)
    sizes = [len(kw["Entries"]) for op, kw in lf.calls if op == "batch_grant_permissions"]
    assert sizes == [20, 20, 5]
    assert result.write_calls == 3 and len(result.outcomes) == 45 and result.ok


def test_throttled_calls_are_retried_with_backoff(lf: FakeLakeFormation) -> None:
    lf.fail_calls["batch_grant_permissions"] = [
        "ThrottlingException",
        "ConcurrentModificationException",
    ]
    sleeps: list[float] = []
    _, result = run(forty_five_grants(), lf, sleeps)
    assert result.ok and result.retries == 2 and len(sleeps) == 2
    assert sleeps[1] > sleeps[0] * 0.9  # grows (with jitter)
    assert result.calls["batch_grant_permissions"] == 5  # 3 batches + 2 retried attempts


def test_transient_entry_failures_are_retried_in_the_next_round(lf: FakeLakeFormation) -> None:
    lf.fail_entries.append(
        (
            "batch_grant_permissions",
            lambda e: e["Resource"]["Table"].get("Name") == "t07",
            "ConcurrentModificationException",
            2,
        )
    )
    sleeps: list[float] = []
    _, result = run(forty_five_grants(), lf, sleeps)
    assert result.ok and len(sleeps) == 2
    assert lf.held(ROLE, table_resource("sales", "t07", ACCOUNT)) == {"SELECT"}
    retry_sizes = [len(kw["Entries"]) for op, kw in lf.calls if op == "batch_grant_permissions"][3:]
    assert retry_sizes == [1, 1]


def test_partial_failure_is_reported_and_the_rest_applied(lf: FakeLakeFormation) -> None:
    lf.fail_entries.append(
        (
            "batch_grant_permissions",
            lambda e: e["Resource"]["Table"].get("Name") == "t03",
            "EntityNotFoundException",
            1,
        )
    )
    lf.fail_entries.append(
        (
            "batch_grant_permissions",
            lambda e: e["Resource"]["Table"].get("Name") == "t04",
            "AlreadyExistsException",
            1,
        )
    )
    _, result = run(forty_five_grants(), lf)
    assert not result.ok
    (failure,) = result.failed
    assert failure.error_code == "EntityNotFoundException"
    assert failure.change.resource == table_resource("sales", "t03", ACCOUNT)
    statuses = sorted(o.status for o in result.outcomes)
    assert statuses.count("applied") == 43 and statuses.count("already_done") == 1
    assert result.to_dict()["counts"] == {"applied": 43, "already_done": 1, "failed": 1}


def test_retries_give_up_and_report(lf: FakeLakeFormation) -> None:
    lf.fail_calls["batch_grant_permissions"] = ["ThrottlingException"] * 10
    _, result = run([entry()], lf, max_attempts=3)
    assert [o.error_code for o in result.failed] == ["ThrottlingException"]
    assert result.calls["batch_grant_permissions"] == 3


def test_a_failing_tag_creation_does_not_stop_the_grants(lf: FakeLakeFormation) -> None:
    lf.fail_calls["create_lf_tag"] = ["AccessDeniedException"]
    doc = [entry(), entry(named_data_catalog=None, lf_tags=[{"TagKey": "d", "TagValues": ["x"]}])]
    _, result = run(doc, lf)
    assert [o.change.action for o in result.failed] == ["create_lf_tag"]
    assert lf.held(ROLE, table_resource("sales", "orders", ACCOUNT)) == {"SELECT"}


def test_tag_created_meanwhile_counts_as_done_and_gets_our_values(lf: FakeLakeFormation) -> None:
    the_plan = plan(
        validate({"version": 1, "lf_tags": [{"TagKey": "d", "TagValues": ["x", "y"]}]}),
        lf,
        catalog_id=ACCOUNT,
    )
    lf.tags["d"] = ["x"]  # someone else created it between plan and apply
    result = apply(the_plan, lf, sleep=lambda s: None)
    assert result.ok and sorted(lf.tags["d"]) == ["x", "y"]


def test_changed_data_cells_filter_is_updated(lf: FakeLakeFormation) -> None:
    run(RICH, lf)
    changed = json.loads(json.dumps(RICH))
    changed["data_cells_filters"][0]["RowFilter"] = "country = 'DE'"
    (change,) = plan(validate(changed), lf, catalog_id=ACCOUNT).changes
    assert change.action == "update_data_cells_filter"
    assert apply(plan(validate(changed), lf, catalog_id=ACCOUNT), lf).ok
    assert plan(validate(changed), lf, catalog_id=ACCOUNT).empty


def test_drift_finds_a_permission_removed_outside_the_documents(lf: FakeLakeFormation) -> None:
    """Given a document in force and a grant revoked by hand, drift lists exactly that,
    and applying the drift plan (opt-in reconcile) restores it."""
    doc = validate(original("original_final.json"), source="governance/lf.json")
    apply(plan(doc, lf, catalog_id=ACCOUNT), lf)
    assert not detect_drift([doc], lf, catalog_id=ACCOUNT).drifted
    principal = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/XX"
    key = (
        principal,
        json.dumps(table_resource("bdb4834_formatted", "audit_control", ACCOUNT), sort_keys=True),
    )
    lf.grants[key][0].discard("SELECT")

    report = detect_drift([doc], lf, catalog_id=ACCOUNT)
    assert [d.kind for d in report.differences] == ["permission_missing"]
    body = report.to_dict()
    assert body["documents"] == ["governance/lf.json"]
    assert body["differences"][0]["change"]["permissions"] == ["SELECT"]
    assert report.plan is not None and apply(report.plan, lf).ok
    assert not detect_drift([doc], lf, catalog_id=ACCOUNT).drifted


def test_drift_merges_documents_in_order(lf: FakeLakeFormation) -> None:
    """A later document's REVOKE wins over an earlier GRANT of the same permission."""
    grant = validate([entry(table_permissions=["SELECT", "DESCRIBE"])], source="a.json")
    revoke = validate([entry(access_type="REVOKE", table_permissions=["SELECT"])], source="b.json")
    lf.seed_grant(ROLE, table_resource("sales", "orders", ACCOUNT), ["SELECT", "DESCRIBE"])
    report = detect_drift([grant, revoke], lf, catalog_id=ACCOUNT)
    assert [(d.kind, d.change.permissions) for d in report.differences] == [
        ("revoked_permission_present", ["SELECT"])
    ]


def test_listing_is_paginated(lf: FakeLakeFormation) -> None:
    """ListPermissions pages (3 per page here) are all read before comparing."""
    run(forty_five_grants(), lf)
    the_plan = plan(validate(forty_five_grants()), lf, catalog_id=ACCOUNT)
    assert the_plan.empty and lf.count("list_permissions") > 15
