"""Lake Formation's grants evaluated: governance documents applied on moto change who reads what.

Each test applies real documents through the governance engine (validate -> plan -> apply)
on moto's Lake Formation (with the operations the embedded runtime adds to it) and asks
:class:`AccessPolicy` what a principal may read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.governance.conftest import ACCOUNT, CARDS_COLUMNS

from lakegov.governance import apply, plan, validate
from lakegov.governance.access import AccessDenied, AccessPolicy, role_arn
from lakegov.governance.table_grant import TableGrant

EXAMPLE = Path(__file__).parents[3] / "examples" / "governance" / "lf_tags_metadata.json"
ANALYST = f"arn:aws:iam::{ACCOUNT}:role/analyst"
ENGINEER = f"arn:aws:iam::{ACCOUNT}:role/data-engineer"
AUDITOR = f"arn:aws:iam::{ACCOUNT}:role/auditor"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/lake-admin"


def put(aws: dict[str, Any], document: Any) -> None:
    """Apply a governance document as the upload handler does; every change must succeed."""
    result = apply(plan(validate(document), aws["lf"], aws["glue"], catalog_id=ACCOUNT), aws["lf"])
    assert result.ok, result.to_dict()


def tag_tables(aws: dict[str, Any]) -> None:
    """The two mwaa_blog tables carry domain=mwaa_blog (the database does not)."""
    put(
        aws,
        {
            "version": 1,
            "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog", "hr"]}],
            "assignments": [
                {
                    "Database": "lakegov_dev_formatted",
                    "Table": table,
                    "lf_tags": [{"TagKey": "domain", "TagValues": [value]}],
                }
                for table, value in (
                    ("mwaa_blog_cards", "mwaa_blog"),
                    ("mwaa_blog_customers", "mwaa_blog"),
                    ("hr_salaries", "hr"),
                )
            ],
        },
    )


def test_the_example_document_grants_by_tag_and_by_name(aws: dict[str, Any]) -> None:
    """Given the tables tagged and the shipped example document applied, the analyst
    (LF-Tag domain=mwaa_blog) reads the two tagged tables whole and is refused the HR one;
    the data engineer (named grants, Table "*") reads every table of both databases."""
    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    policy: AccessPolicy = aws["policy"]

    for table in ("mwaa_blog_cards", "mwaa_blog_customers"):
        assert policy.table_access(ANALYST, "lakegov_dev_formatted", table) == TableGrant(
            None, None
        )
    with pytest.raises(AccessDenied) as refused:
        policy.table_access(ANALYST, "lakegov_dev_formatted", "hr_salaries")
    assert str(refused.value) == (
        f"Insufficient Lake Formation permission(s): {ANALYST} has no SELECT on "
        "lakegov_dev_formatted.hr_salaries"
    )
    with pytest.raises(AccessDenied):
        policy.table_access(ANALYST, "lakegov_dev_formatted_stg", "mwaa_blog_cards")
    assert policy.table_access(ENGINEER, "lakegov_dev_formatted", "hr_salaries").columns is None
    assert policy.table_access(ENGINEER, "lakegov_dev_formatted_stg", "mwaa_blog_cards")
    with pytest.raises(AccessDenied):
        policy.table_access(AUDITOR, "lakegov_dev_formatted", "mwaa_blog_cards")


def test_a_session_of_the_role_holds_the_roles_grants(aws: dict[str, Any]) -> None:
    """Queries run as an STS session; grants name the role (path or not)."""
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/analyst/alice"
    assert role_arn(session) == ANALYST
    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    assert aws["policy"].table_access(session, "lakegov_dev_formatted", "mwaa_blog_cards")
    with pytest.raises(AccessDenied):
        aws["policy"].table_access(session, "lakegov_dev_formatted", "hr_salaries")
    # a session ARN carries no role path: a grant to a role with a path still applies
    put(
        aws,
        [
            {
                "role_arn": f"arn:aws:iam::{ACCOUNT}:role/teams/hr/auditor",
                "access_type": "GRANT",
                "named_data_catalog": [
                    {"Database": "lakegov_dev_formatted", "Table": "hr_salaries"}
                ],
                "table_permissions": ["SELECT"],
            }
        ],
    )
    auditor_session = f"arn:aws:sts::{ACCOUNT}:assumed-role/auditor/bob"
    assert aws["policy"].table_access(auditor_session, "lakegov_dev_formatted", "hr_salaries")
    other_account = "arn:aws:sts::210987654321:assumed-role/analyst/alice"
    with pytest.raises(AccessDenied, match=r"cross-account access .* not evaluated locally"):
        aws["policy"].table_access(other_account, "lakegov_dev_formatted", "mwaa_blog_cards")


def test_column_tags_take_columns_out_of_a_tag_grant(aws: dict[str, Any]) -> None:
    """A column tagged domain=hr inside a domain=mwaa_blog table: the mwaa_blog analyst
    loses that column, the hr role gets that column only."""
    tag_tables(aws)
    put(
        aws,
        {
            "version": 1,
            "assignments": [
                {
                    "Database": "lakegov_dev_formatted",
                    "Table": "mwaa_blog_cards",
                    "Columns": ["card_number"],
                    "lf_tags": [{"TagKey": "domain", "TagValues": ["hr"]}],
                }
            ],
            "entries": [
                {
                    "role_arn": role,
                    "access_type": "GRANT",
                    "lf_tags": [{"TagKey": "domain", "TagValues": [value]}],
                    "table_permissions": ["SELECT"],
                }
                for role, value in ((ANALYST, "mwaa_blog"), (AUDITOR, "hr"))
            ],
        },
    )
    policy: AccessPolicy = aws["policy"]
    analyst = policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert analyst.columns == frozenset(CARDS_COLUMNS) - {"card_number"}
    assert analyst.missing(["card_id", "card_number"]) == ["card_number"]
    auditor = policy.table_access(AUDITOR, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert auditor == TableGrant(frozenset({"card_number"}), None)
    assert policy.table_access(AUDITOR, "lakegov_dev_formatted", "hr_salaries").columns is None
    with pytest.raises(AccessDenied) as refused:
        policy.check_columns(
            ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards", ["card_id", "card_number"]
        )
    assert refused.value.missing_columns == ("card_number",)
    assert "column(s) card_number of lakegov_dev_formatted.mwaa_blog_cards" in str(refused.value)


def test_database_tags_are_inherited_and_overridden_by_table_tags(aws: dict[str, Any]) -> None:
    put(
        aws,
        {
            "version": 1,
            "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog", "hr"]}],
            "assignments": [
                {
                    "Database": "lakegov_dev_formatted",
                    "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog"]}],
                },
                {
                    "Database": "lakegov_dev_formatted",
                    "Table": "hr_salaries",
                    "lf_tags": [{"TagKey": "domain", "TagValues": ["hr"]}],
                },
            ],
            "entries": [
                {
                    "role_arn": ANALYST,
                    "access_type": "GRANT",
                    "lf_tags": [{"TagKey": "domain", "TagValues": ["mwaa_blog"]}],
                    "table_permissions": ["SELECT"],
                }
            ],
        },
    )
    readable = aws["policy"].tables_for_principal(ANALYST)
    assert sorted(readable) == [
        ("lakegov_dev_formatted", "mwaa_blog_cards"),
        ("lakegov_dev_formatted", "mwaa_blog_customers"),
    ]


def test_column_grants_restrict_columns(aws: dict[str, Any]) -> None:
    put(
        aws,
        [
            {
                "role_arn": ANALYST,
                "access_type": "GRANT",
                "named_data_catalog": [
                    {
                        "Database": "lakegov_dev_formatted",
                        "Table": "mwaa_blog_cards",
                        "Columns": ["card_id", "country"],
                    },
                    {
                        "Database": "lakegov_dev_formatted",
                        "Table": "mwaa_blog_customers",
                        "ExcludedColumns": ["email"],
                    },
                ],
                "table_permissions": ["SELECT"],
            }
        ],
    )
    policy: AccessPolicy = aws["policy"]
    cards = policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert cards == TableGrant(frozenset({"card_id", "country"}), None)
    customers = policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_customers")
    assert customers.columns == frozenset({"customer_id", "name", "partition_dt"})
    # the catalog shows a table to whoever holds a permission on it, with those columns
    described = policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards", "DESCRIBE")
    assert described == TableGrant(frozenset({"card_id", "country"}), None)
    with pytest.raises(AccessDenied):
        policy.table_access(ANALYST, "lakegov_dev_formatted", "hr_salaries", "DESCRIBE")


def test_a_data_cells_filter_gives_a_row_filter(aws: dict[str, Any]) -> None:
    """A filter keeping French cards without the card number: rows and columns both cut;
    a second filter on the same table adds up cell by cell."""
    put(
        aws,
        {
            "version": 1,
            "data_cells_filters": [
                {
                    "Name": "fr_cards",
                    "Database": "lakegov_dev_formatted",
                    "Table": "mwaa_blog_cards",
                    "RowFilter": "country = 'FR'",
                    "ExcludedColumns": ["card_number"],
                },
                {
                    "Name": "ids_everywhere",
                    "Database": "lakegov_dev_formatted",
                    "Table": "mwaa_blog_cards",
                    "RowFilter": "country <> 'FR'",
                    "Columns": ["card_id"],
                },
            ],
            "entries": [
                {
                    "role_arn": ANALYST,
                    "access_type": "GRANT",
                    "named_data_catalog": [
                        {
                            "Database": "lakegov_dev_formatted",
                            "Table": "mwaa_blog_cards",
                            "DataCellsFilter": "fr_cards",
                        }
                    ],
                    "table_permissions": ["SELECT"],
                },
                {
                    "role_arn": AUDITOR,
                    "access_type": "GRANT",
                    "named_data_catalog": [
                        {
                            "Database": "lakegov_dev_formatted",
                            "Table": "mwaa_blog_cards",
                            "DataCellsFilter": name,
                        }
                        for name in ("fr_cards", "ids_everywhere")
                    ],
                    "table_permissions": ["SELECT"],
                },
            ],
        },
    )
    policy: AccessPolicy = aws["policy"]
    analyst = policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert analyst == TableGrant(frozenset(CARDS_COLUMNS) - {"card_number"}, "country = 'FR'")

    auditor = policy.table_access(AUDITOR, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert auditor.columns == frozenset(CARDS_COLUMNS) - {"card_number"}
    assert auditor.row_filter == "(country <> 'FR') OR (country = 'FR')"
    # card_id shows on every kept row; the other columns only on French ones
    french_only = ("country", "customer_id", "partition_dt")
    assert dict(auditor.cell_filters) == dict.fromkeys(french_only, "country = 'FR'")
    assert aws["lf"].list_data_cells_filter()["DataCellsFilters"][0]["Name"] == "fr_cards"


def test_a_revoke_document_removes_access(aws: dict[str, Any]) -> None:
    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    policy: AccessPolicy = aws["policy"]
    assert policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards")

    revoke = json.loads(EXAMPLE.read_text())[0] | {"access_type": "REVOKE"}
    put(aws, [revoke])
    with pytest.raises(AccessDenied):
        policy.table_access(ANALYST, "lakegov_dev_formatted", "mwaa_blog_cards")
    assert policy.table_access(ENGINEER, "lakegov_dev_formatted", "mwaa_blog_cards")


def test_all_implies_select_and_describe(aws: dict[str, Any]) -> None:
    aws["lf"].grant_permissions(
        Principal={"DataLakePrincipalIdentifier": AUDITOR},
        Resource={"Table": {"DatabaseName": "lakegov_dev_formatted", "Name": "hr_salaries"}},
        Permissions=["ALL"],
    )
    policy: AccessPolicy = aws["policy"]
    assert policy.table_access(AUDITOR, "lakegov_dev_formatted", "hr_salaries") == TableGrant(
        None, None
    )
    assert policy.table_access(AUDITOR, "lakegov_dev_formatted", "hr_salaries", "DESCRIBE")


def test_iam_allowed_principals_opens_a_table_to_the_account(aws: dict[str, Any]) -> None:
    """Use only IAM access control on a table: every principal of the account reads it."""
    aws["lf"].grant_permissions(
        Principal={"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
        Resource={"Table": {"DatabaseName": "lakegov_dev_formatted", "Name": "hr_salaries"}},
        Permissions=["ALL"],
    )
    assert aws["policy"].table_access(AUDITOR, "lakegov_dev_formatted", "hr_salaries")
    with pytest.raises(AccessDenied):
        aws["policy"].table_access(AUDITOR, "lakegov_dev_formatted", "mwaa_blog_cards")


def test_a_data_lake_administrator_describes_everything_and_reads_what_it_is_granted(
    aws: dict[str, Any],
) -> None:
    """As on AWS: administrators are unrestricted in what they see and may grant, but
    hold no implicit SELECT."""
    aws["lf"].put_data_lake_settings(
        DataLakeSettings={"DataLakeAdmins": [{"DataLakePrincipalIdentifier": ADMIN}]}
    )
    policy: AccessPolicy = aws["policy"]
    assert policy.is_unrestricted(ADMIN)
    assert policy.is_unrestricted(f"arn:aws:sts::{ACCOUNT}:assumed-role/lake-admin/ops")
    assert not policy.is_unrestricted(ANALYST)
    assert policy.table_access(ADMIN, "lakegov_dev_formatted", "hr_salaries", "DESCRIBE")
    with pytest.raises(AccessDenied):
        policy.table_access(ADMIN, "lakegov_dev_formatted", "hr_salaries")


def test_who_can_read_a_table(aws: dict[str, Any]) -> None:
    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    readers = aws["policy"].principals_for_table("lakegov_dev_formatted", "mwaa_blog_cards")
    assert readers == {ANALYST: TableGrant(None, None), ENGINEER: TableGrant(None, None)}
    assert aws["policy"].principals_for_table("lakegov_dev_formatted", "hr_salaries") == {
        ENGINEER: TableGrant(None, None)
    }


def test_lakegov_access_answers_both_ways(aws: dict[str, Any], capsys: Any) -> None:
    """``lakegov access`` prints the evaluator's answers, for a table and for a principal."""
    from lakegov.cli import main

    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    put(
        aws,
        [
            {
                "role_arn": AUDITOR,
                "access_type": "GRANT",
                "named_data_catalog": [
                    {
                        "Database": "lakegov_dev_formatted",
                        "Table": "mwaa_blog_cards",
                        "Columns": ["card_id"],
                    }
                ],
                "table_permissions": ["SELECT"],
            }
        ],
    )
    aws["lf"].grant_permissions(  # shared with another account: its admin decides there
        Principal={"DataLakePrincipalIdentifier": "210987654321"},
        Resource={"Table": {"DatabaseName": "lakegov_dev_formatted", "Name": "mwaa_blog_cards"}},
        Permissions=["SELECT"],
    )
    where = ["--region", "eu-west-1", "--catalog-id", ACCOUNT]

    assert main(["access", "lakegov_dev_formatted.mwaa_blog_cards", *where]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "lakegov_dev_formatted.mwaa_blog_cards: 3 principal(s) hold SELECT",
        f"  {ANALYST}  all columns, all rows",
        f"  {AUDITOR}  columns card_id, all rows",
        f"  {ENGINEER}  all columns, all rows",
        "  210987654321  not evaluated: shared with account 210987654321: its administrators "
        "grant it on in that account (resource links), which is not evaluated locally",
    ]

    assert main(["access", "--principal", ANALYST, "--json", *where]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["data_lake_administrator"] is False
    assert [t["table"] for t in answer["tables"]] == [
        "lakegov_dev_formatted.mwaa_blog_cards",
        "lakegov_dev_formatted.mwaa_blog_customers",
    ]

    assert main(["access", "lakegov_dev_formatted.nope", *where]) == 1
    assert "lakegov_dev_formatted.nope is not in the Data Catalog" in capsys.readouterr().err


def test_one_query_s_evaluator_reads_lake_formation_once(aws: dict[str, Any]) -> None:
    """With ``reuse_reads`` (the local Athena's evaluator of one query), the questions about
    several tables share one ListPermissions; without it each question reads afresh."""
    tag_tables(aws)
    put(aws, json.loads(EXAMPLE.read_text()))
    calls: list[str] = []

    class Counting:
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self._client, name)
            if name == "list_permissions":
                calls.append(name)
            return attr

    tables = ("mwaa_blog_cards", "mwaa_blog_customers")
    shared = AccessPolicy(Counting(aws["lf"]), aws["glue"], catalog_id=ACCOUNT, reuse_reads=True)
    for table in tables:
        assert shared.table_access(ANALYST, "lakegov_dev_formatted", table).columns is None
    assert len(calls) == 1
    fresh = AccessPolicy(Counting(aws["lf"]), aws["glue"], catalog_id=ACCOUNT)
    for table in tables:
        fresh.table_access(ANALYST, "lakegov_dev_formatted", table)
    assert len(calls) == 3
