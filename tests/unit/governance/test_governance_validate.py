"""Validation of governance documents: the original format, every rule, all-or-nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from tests.unit.governance.conftest import DATA, ROLE, entry, original
from tests.unit.governance.fakes import ACCOUNT

from lakegov.errors import InvalidDocument, ValidationIssue
from lakegov.governance import Guardrails, load_and_validate, parse_document, validate


def errors_of(document: Any, guardrails: Guardrails | None = None) -> list[ValidationIssue]:
    with pytest.raises(InvalidDocument) as info:
        validate(document, source="doc.json", guardrails=guardrails)
    assert info.value.source == "doc.json"
    return [i for i in info.value.issues if i.severity == "error"]


# -- the original files ------------------------------------------------------------------


def test_original_final_file_applies_with_names_trimmed_and_warnings() -> None:
    """Given the post's final file (stray spaces in role ARN and databases),
    when validated, then it is accepted, each trimmed field is named in a warning,
    and the grants use the trimmed names."""
    doc = validate(original("original_final.json"), source="lf_tags_metadata.json")

    paths = sorted(w.path for w in doc.warnings)
    assert paths == [
        "$[0].role_arn",
        "$[1].named_data_catalog[0].Database",
        "$[1].named_data_catalog[1].Database",
        "$[1].role_arn",
    ]
    assert all(w.severity == "warning" and "spaces removed" in w.message for w in doc.warnings)
    state = doc.desired_state(ACCOUNT)
    assert state.tags == {"blog": {"bdb-4834"}}
    resources = sorted(str(g.resource) for g in state.grants.values())
    assert any(
        "'DatabaseName': 'bdb4834_formatted', 'Name': 'audit_control'" in r for r in resources
    )
    assert any(
        "'DatabaseName': 'bdb4834_formatted_stg', 'TableWildcard': {}" in r for r in resources
    )
    assert all(g.permissions == {"SELECT", "DESCRIBE"} for g in state.grants.values())
    assert {g.principal for g in state.grants.values()} == {
        f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/XX"
    }


def test_original_initial_file_trims_the_tag_key() -> None:
    """Given the post's initial file (TagKey " blog"), the tag is created as 'blog'."""
    doc = validate(original("original_initial.json"))
    assert "$[0].lf_tags[0].TagKey" in {w.path for w in doc.warnings}
    assert doc.desired_state(ACCOUNT).tags == {"blog": {"bdb-4834"}}


def test_added_entry_alone_is_one_object_document() -> None:
    """Given the single object the post adds, it is accepted on its own (one entry)."""
    doc = validate(original("added_entry.json"))
    assert doc.entry_count == 1
    assert len(doc.desired_state(ACCOUNT).grants) == 2


def test_original_file_verbatim_is_refused_for_its_redacted_account() -> None:
    """Given the file exactly as printed (account redacted as XXX), it is refused,
    naming role_arn and saying why, rather than crashing."""
    issues = errors_of(original("original_final.json", account=None))
    assert {i.path for i in issues} == {"$[0].role_arn", "$[1].role_arn"}
    assert all("'XXX' is not 12 digits" in i.message for i in issues)


def test_strict_guardrail_refuses_stray_spaces_naming_the_field() -> None:
    issues = errors_of(original("original_initial.json"), Guardrails(refuse_stray_spaces=True))
    assert {i.path for i in issues} == {"$[0].role_arn", "$[0].lf_tags[0].TagKey"}
    assert all("without leading or trailing spaces" in i.message for i in issues)


def test_structure_template_from_the_post_is_not_json() -> None:
    """The post's structure template has '""<<Table_Name>>"': a clear parse error at $."""
    with pytest.raises(InvalidDocument) as info:
        load_and_validate((DATA / "structure_template.txt").read_bytes(), source="t.json")
    (issue,) = info.value.issues
    assert issue.path == "$"
    assert "expected JSON" in issue.message and "line 13" in issue.message


# -- every rule, with its message --------------------------------------------------------

RULES: list[tuple[str, Any, str, str]] = [
    ("unknown field", [entry(Tabel="x")], "$[0].Tabel", "unknown field 'Tabel'"),
    (
        "bad access_type",
        [entry(access_type="ALLOW")],
        "$[0].access_type",
        "expected one of GRANT, REVOKE",
    ),
    (
        "null access_type",
        [entry(access_type=None) | {"access_type": None}],
        "$[0].access_type",
        "got null",
    ),
    ("missing access_type", [{"role_arn": ROLE}], "$[0]", "missing required field 'access_type'"),
    (
        "wrong type",
        [entry(table_permissions="SELECT")],
        "$[0].table_permissions",
        "expected array, got string",
    ),
    (
        "unknown permission",
        [entry(table_permissions=["READ"])],
        "$[0].table_permissions[0]",
        "expected one of ALL",
    ),
    (
        "no principal",
        [entry(role_arn=None)],
        "$[0]",
        "missing required field 'role_arn' (or 'principal')",
    ),
    ("two principals", [entry(principal=ROLE)], "$[0]", "role_arn or principal, not both"),
    (
        "malformed ARN",
        [entry(role_arn="arn:aws:iam::12345:role/x")],
        "$[0].role_arn",
        "'12345' is not 12 digits",
    ),
    (
        "not a principal",
        [entry(role_arn="analyst")],
        "$[0].role_arn",
        "expected an IAM role or user ARN",
    ),
    (
        "IAM_ALLOWED_PRINCIPALS",
        [entry(role_arn="IAM_ALLOWED_PRINCIPALS")],
        "$[0].role_arn",
        "not allowed",
    ),
    (
        "wildcard principal",
        [entry(role_arn=f"arn:aws:iam::{ACCOUNT}:role/*")],
        "$[0].role_arn",
        "no wildcards",
    ),
    (
        "CREATE_TABLE on a table",
        [entry(table_permissions=["CREATE_TABLE"])],
        "$[0].table_permissions[0]",
        "CREATE_TABLE is not a table permission (it is a database permission",
    ),
    (
        "SELECT on a database",
        [entry(database_permissions=["SELECT"])],
        "$[0].database_permissions[0]",
        "SELECT is not a database permission (it is a table permission",
    ),
    (
        "ALL needs an allow",
        [entry(table_permissions=["ALL"])],
        "$[0].table_permissions[0]",
        "granting ALL needs an explicit allow",
    ),
    (
        "DATA_LOCATION_ACCESS on a table",
        [entry(table_permissions=["DATA_LOCATION_ACCESS"])],
        "$[0].table_permissions[0]",
        "list them in data_locations",
    ),
    (
        "data location needs an allow",
        [entry(data_locations=["arn:aws:s3:::lake/raw"])],
        "$[0].data_locations[0]",
        "granting DATA_LOCATION_ACCESS needs an explicit allow",
    ),
    (
        "bad data location",
        [entry(data_locations=["s3://lake/raw"])],
        "$[0].data_locations[0]",
        "expected an S3 location ARN",
    ),
    ("no resource", [entry(named_data_catalog=[])], "$[0]", "names no resource"),
    (
        "lf_tags without permissions",
        [
            entry(
                named_data_catalog=None,
                table_permissions=None,
                lf_tags=[{"TagKey": "d", "TagValues": ["x"]}],
            )
        ],
        "$[0].lf_tags",
        "expected table_permissions or database_permissions",
    ),
    (
        "database item without database permissions",
        [entry(named_data_catalog=[{"Database": "sales"}])],
        "$[0].named_data_catalog[0]",
        "needs database_permissions",
    ),
    (
        "columns: SELECT only",
        [
            entry(
                table_permissions=["SELECT", "INSERT"],
                named_data_catalog=[{"Database": "sales", "Table": "orders", "Columns": ["id"]}],
            )
        ],
        "$[0].named_data_catalog[0]",
        "column-level grants allow SELECT only; got INSERT",
    ),
    (
        "columns and excluded",
        [
            entry(
                named_data_catalog=[
                    {
                        "Database": "sales",
                        "Table": "orders",
                        "Columns": ["a"],
                        "ExcludedColumns": ["b"],
                    }
                ]
            )
        ],
        "$[0].named_data_catalog[0]",
        "Columns or ExcludedColumns, not both",
    ),
    (
        "columns on all tables",
        [entry(named_data_catalog=[{"Database": "sales", "Table": "*", "Columns": ["a"]}])],
        "$[0].named_data_catalog[0].Table",
        "expected a named table",
    ),
    (
        "columns without table",
        [entry(named_data_catalog=[{"Database": "sales", "Columns": ["a"]}])],
        "$[0].named_data_catalog[0]",
        "expected a Table",
    ),
    (
        "data cells filter permissions",
        [
            entry(
                table_permissions=["ALTER"],
                named_data_catalog=[
                    {"Database": "sales", "Table": "orders", "DataCellsFilter": "fr"}
                ],
            )
        ],
        "$[0].named_data_catalog[0]",
        "data cells filters take SELECT, DESCRIBE or DROP; got ALTER",
    ),
    (
        "grant option on revoke",
        [entry(access_type="REVOKE", grant_option=True)],
        "$[0].grant_option",
        "GRANT entries only",
    ),
    (
        "grant option not granted",
        [entry(grant_option=["DESCRIBE"])],
        "$[0].grant_option[0]",
        "DESCRIBE is not granted by this entry",
    ),
    (
        "duplicate tag key",
        [
            entry(
                named_data_catalog=None,
                lf_tags=[{"TagKey": "d", "TagValues": ["x"]}, {"TagKey": "d", "TagValues": ["y"]}],
            )
        ],
        "$[0].lf_tags[1].TagKey",
        "appears twice",
    ),
    (
        "bad tag key",
        [entry(named_data_catalog=None, lf_tags=[{"TagKey": "a#b", "TagValues": ["x"]}])],
        "$[0].lf_tags[0].TagKey",
        "expected an LF-Tag key",
    ),
    (
        "empty tag values",
        [entry(named_data_catalog=None, lf_tags=[{"TagKey": "a", "TagValues": []}])],
        "$[0].lf_tags[0].TagValues",
        "expected at least 1 item",
    ),
    (
        "space inside a name",
        [entry(named_data_catalog=[{"Database": "sales data", "Table": "t"}])],
        "$[0].named_data_catalog[0].Database",
        "without spaces",
    ),
    (
        "blank name",
        [entry(named_data_catalog=[{"Database": "  ", "Table": "t"}])],
        "$[0].named_data_catalog[0].Database",
        "expected a non-empty database name",
    ),
    (
        "grant and revoke together",
        [entry(), entry(access_type="REVOKE")],
        "$[1].named_data_catalog[0]",
        "revokes SELECT on table sales.orders that $[0].named_data_catalog[0] grants",
    ),
    (
        "not a list or object",
        "grant everything",
        "$",
        "expected a list of entries or an object, got string",
    ),
    ("entry not an object", [entry(), 42], "$[1]", "expected object, got number"),
    ("envelope version", {"version": 2, "entries": []}, "$.version", "expected 1; got 2"),
    (
        "envelope entries type",
        {"version": 1, "entries": {}},
        "$.entries",
        "expected array, got object",
    ),
    (
        "assignment to all tables",
        {
            "version": 1,
            "assignments": [
                {
                    "Database": "sales",
                    "Table": "*",
                    "lf_tags": [{"TagKey": "d", "TagValues": ["x"]}],
                }
            ],
        },
        "$.assignments[0].Table",
        "LF-Tags are assigned to one table at a time",
    ),
    (
        "assignment: one value per key",
        {
            "version": 1,
            "assignments": [
                {
                    "Database": "sales",
                    "lf_tags": [
                        {"TagKey": "d", "TagValues": ["x"]},
                        {"TagKey": "d", "TagValues": ["y"]},
                    ],
                }
            ],
        },
        "$.assignments[0].lf_tags[1].TagKey",
        "one value per key",
    ),
    (
        "assignment: two values",
        {
            "version": 1,
            "assignments": [
                {"Database": "sales", "lf_tags": [{"TagKey": "d", "TagValues": ["x", "y"]}]}
            ],
        },
        "$.assignments[0].lf_tags[0].TagValues",
        "expected at most 1 item",
    ),
    (
        "duplicate filter",
        {
            "version": 1,
            "data_cells_filters": [
                {"Name": "fr", "Database": "sales", "Table": "orders"},
                {"Name": "fr", "Database": "sales", "Table": "orders", "RowFilter": "x = 1"},
            ],
        },
        "$.data_cells_filters[1].Name",
        "declared twice",
    ),
]


@pytest.mark.parametrize(
    ("document", "path", "fragment"), [r[1:] for r in RULES], ids=[r[0] for r in RULES]
)
def test_each_rule_reports_path_value_and_expectation(
    document: Any, path: str, fragment: str
) -> None:
    """Given a document breaking one rule, the error names its path and what is expected."""
    issues = errors_of(document)
    matching = [i for i in issues if i.path == path]
    assert matching, f"no error at {path}; got {[str(i) for i in issues]}"
    assert any(fragment in i.message for i in matching), [i.message for i in matching]


def test_errors_carry_the_offending_value() -> None:
    issues = errors_of(
        [entry(role_arn="arn:aws:iam::XXX:role/r", table_permissions=["CREATE_TABLE"])]
    )
    assert {(i.path, i.value) for i in issues} == {
        ("$[0].role_arn", "arn:aws:iam::XXX:role/r"),
        ("$[0].table_permissions[0]", "CREATE_TABLE"),
    }


def test_all_errors_of_all_entries_are_reported_at_once() -> None:
    """Given three bad entries among good ones, every problem is listed, not just the first."""
    doc = [
        entry(),
        entry(role_arn="nobody"),
        entry(),
        entry(table_permissions=["CREATE_TABLE"]),
        entry(named_data_catalog=[{"Database": "a b", "Table": "t"}]),
    ]
    paths = {i.path for i in errors_of(doc)}
    assert paths == {
        "$[1].role_arn",
        "$[3].table_permissions[0]",
        "$[4].named_data_catalog[0].Database",
    }


# -- guardrails ---------------------------------------------------------------------------


def test_only_governed_databases_may_appear() -> None:
    g = Guardrails(governed_databases=("sales_*", "bdb4834_*"))
    issues = errors_of([entry(named_data_catalog=[{"Database": "hr", "Table": "salaries"}])], g)
    assert issues[0].path == "$[0].named_data_catalog[0].Database"
    assert "not governed here: expected a database matching sales_*, bdb4834_*" in issues[0].message
    validate(original("original_final.json"), guardrails=g)  # bdb4834_* is governed


def test_sensitive_permissions_pass_with_an_explicit_allow() -> None:
    g = Guardrails(allowed_permissions=frozenset({"ALL", "DATA_LOCATION_ACCESS"}))
    doc = validate(
        [entry(table_permissions=["ALL"], data_locations=["arn:aws:s3:::lake/raw"])], guardrails=g
    )
    kinds = {next(iter(p.resource)) for p in doc.desired_state(ACCOUNT).grants.values()}
    assert kinds == {"Table", "DataLocation"}


def test_revoking_a_sensitive_permission_needs_no_allow() -> None:
    """Given default guardrails (ALL needs an explicit allow to be granted), a REVOKE of ALL
    validates and becomes exactly one revoke of ALL on the table, and no grant."""
    state = validate([entry(access_type="REVOKE", table_permissions=["ALL"])]).desired_state(
        ACCOUNT
    )
    assert state.grants == {}
    ((principal, resource, perms),) = [
        (p.principal, p.resource, p.permissions) for p in state.revokes.values()
    ]
    assert principal == ROLE and perms == {"ALL"}
    assert resource == {"Table": {"CatalogId": ACCOUNT, "DatabaseName": "sales", "Name": "orders"}}


def test_cross_account_principals_refused_when_disallowed() -> None:
    g = Guardrails(allow_cross_account=False, home_account_id=ACCOUNT)
    issues = errors_of(
        [
            entry(role_arn="arn:aws:iam::210987654321:role/partner"),
            entry(role_arn="210987654321"),
            entry(role_arn="arn:aws:organizations::123456789012:organization/o-abcdefghij"),
        ],
        g,
    )
    assert {i.path for i in issues} == {"$[0].role_arn", "$[1].role_arn", "$[2].role_arn"}
    assert all("cross-account grants are not allowed" in i.message for i in issues)
    validate([entry()], guardrails=g)  # own account is fine


def test_grant_option_can_be_forbidden() -> None:
    issues = errors_of([entry(grant_option=True)], Guardrails(allow_grant_option=False))
    assert issues[0].path == "$[0].grant_option"


def test_guardrails_from_settings_refuse_unknown_keys() -> None:
    g = Guardrails.from_dict({"governed_databases": ["a*"], "allowed_permissions": ["ALL"]})
    assert g.governs("abc") and not g.governs("b") and "ALL" in g.allowed_permissions
    with pytest.raises(ValueError, match="governed_dbs"):
        Guardrails.from_dict({"governed_dbs": ["a"]})


# -- the richer format --------------------------------------------------------------------

PRINCIPALS = [
    f"arn:aws:iam::{ACCOUNT}:role/analyst",
    f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Read_0a1b",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:iam::{ACCOUNT}:saml-provider/okta:group/data-analysts",
    f"arn:aws:iam::{ACCOUNT}:saml-provider/okta:user/alice@example.com",
    "arn:aws:identitystore:::group/906716e2e2-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
    "arn:aws:identitystore:::user/906716e2e2-aaaabbbb-cccc-dddd-eeee-ffff00001111",
    "210987654321",
    "arn:aws:organizations::123456789012:organization/o-abcdefghij",
    "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34",
    "arn:aws-cn:iam::123456789012:role/china",
]


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_supported_principals_are_accepted(principal: str) -> None:
    doc = validate([entry(role_arn=None, principal=principal)])
    assert {g.principal for g in doc.desired_state(ACCOUNT).grants.values()} == {principal}


def test_envelope_with_every_optional_part() -> None:
    """Given the richer envelope, every part lands in the desired state."""
    document = {
        "version": 1,
        "description": "sales domain",
        "lf_tags": [{"TagKey": "domain", "TagValues": ["sales", "finance"]}],
        "assignments": [
            {"Database": "sales", "lf_tags": [{"TagKey": "domain", "TagValues": ["sales"]}]},
            {
                "Database": "sales",
                "Table": "customers",
                "Columns": ["Email", "phone"],
                "lf_tags": [{"TagKey": "pii", "TagValues": ["true"]}],
            },
        ],
        "data_cells_filters": [
            {
                "Name": "fr_only",
                "Database": "sales",
                "Table": "orders",
                "RowFilter": "country = 'FR'",
                "ExcludedColumns": ["margin"],
            },
        ],
        "entries": [
            {
                "principal": "arn:aws:identitystore:::group/abc-123",
                "access_type": "GRANT",
                "lf_tags": [{"TagKey": "domain", "TagValues": ["sales"]}],
                "table_permissions": ["SELECT", "DESCRIBE"],
                "database_permissions": ["DESCRIBE"],
                "grant_option": ["DESCRIBE"],
            },
            {
                "role_arn": ROLE,
                "access_type": "GRANT",
                "table_permissions": ["SELECT"],
                "named_data_catalog": [
                    {"Database": "sales", "Table": "customers", "ExcludedColumns": ["email"]},
                    {"Database": "sales", "Table": "orders", "DataCellsFilter": "fr_only"},
                ],
            },
            {
                "principal": "210987654321",
                "access_type": "GRANT",
                "database_permissions": ["CREATE_TABLE"],
                "named_data_catalog": [{"Database": "sales"}],
            },
        ],
    }
    doc = validate(document)
    state = doc.desired_state(ACCOUNT)
    assert state.tags == {"domain": {"sales", "finance"}, "pii": {"true"}}
    assert len(state.assignments) == 2
    column_assignment = next(
        a for a in state.assignments.values() if "TableWithColumns" in a.resource
    )
    assert column_assignment.resource["TableWithColumns"]["ColumnNames"] == ["email", "phone"]
    assert "$.assignments[1].Columns[0]" in {w.path for w in doc.warnings}  # lower-cased
    (flt,) = state.data_cells_filters.values()
    assert flt.table_data["RowFilter"] == {"FilterExpression": "country = 'FR'"}
    assert flt.table_data["ColumnWildcard"] == {"ExcludedColumnNames": ["margin"]}
    kinds = sorted(next(iter(p.resource)) for p in state.grants.values())
    assert kinds == [
        "DataCellsFilter",
        "Database",
        "LFTagPolicy",
        "LFTagPolicy",
        "TableWithColumns",
    ]
    db_policy = next(
        p
        for p in state.grants.values()
        if p.resource.get("LFTagPolicy", {}).get("ResourceType") == "DATABASE"
    )
    assert db_policy.grantable == {"DESCRIBE"}


def test_upper_case_names_are_lowered_with_a_warning() -> None:
    doc = validate([entry(named_data_catalog=[{"Database": "Sales", "Table": "Orders"}])])
    assert {w.path for w in doc.warnings} == {
        "$[0].named_data_catalog[0].Database",
        "$[0].named_data_catalog[0].Table",
    }
    (grant,) = doc.desired_state(ACCOUNT).grants.values()
    assert grant.resource == {
        "Table": {"CatalogId": ACCOUNT, "DatabaseName": "sales", "Name": "orders"}
    }


def test_empty_list_is_valid_with_a_warning() -> None:
    doc = validate([])
    assert doc.entry_count == 0 and [w.path for w in doc.warnings] == ["$"]


def test_the_document_is_not_modified() -> None:
    document = original("original_final.json")
    before = copy.deepcopy(document)
    validate(document)
    assert document == before


@pytest.mark.parametrize("data", [b"\xff\xfe\x00", b"[" * 100_000, b"", b'{"a": }'])
def test_unreadable_bytes_are_refused_at_the_root(data: bytes) -> None:
    with pytest.raises(InvalidDocument) as info:
        parse_document(data, source="x.json")
    assert [i.path for i in info.value.issues] == ["$"]


def test_envelope_reports_entry_errors_alongside_envelope_errors() -> None:
    paths = {
        i.path for i in errors_of({"version": 1, "lf_tags": "x", "entries": [entry(role_arn="x")]})
    }
    assert paths == {"$.lf_tags", "$.entries[0].role_arn"}


def test_published_schema_accepts_every_shape_and_rejects_garbage() -> None:
    """The schema file itself (as other tools would use it) matches the three shapes."""
    from jsonschema import Draft202012Validator

    from lakegov.governance.validate import governance_schema

    checker = Draft202012Validator(governance_schema())
    for good in (
        original("original_final.json", account=None),
        original("added_entry.json", account=None),
        {"version": 1, "entries": [entry()], "lf_tags": [{"TagKey": "k", "TagValues": ["v"]}]},
    ):
        assert checker.is_valid(good)
    for bad in ([{"access_type": "MAYBE"}], {"version": 1, "entries": [{}]}, 7, [entry(x=1)]):
        assert not checker.is_valid(bad)


def test_an_envelope_of_tag_assignments_alone_has_something_to_do() -> None:
    assigned = {
        "version": 1,
        "assignments": [
            {
                "Database": "sales",
                "Table": "orders",
                "lf_tags": [{"TagKey": "pii", "TagValues": ["no"]}],
            }
        ],
    }
    assert "no entries" not in " ".join(w.message for w in validate(assigned).warnings)
    nothing = {"version": 1, "description": "placeholder", "entries": []}
    (warning,) = validate(nothing).warnings
    assert (warning.path, warning.message) == (
        "$.entries",
        "the document has no entries: nothing to do",
    )


def test_a_bad_principal_is_reported_with_the_entry_s_schema_errors() -> None:
    bad = entry(table_permissions=["SELECT", "READ"])
    bad["role_arn"] = "analyst"
    with pytest.raises(InvalidDocument) as info:
        validate([bad])
    paths = sorted(i.path for i in info.value.issues if i.severity == "error")
    assert paths == ["$[0].role_arn", "$[0].table_permissions[1]"]
