"""How grants on one table add up (no AWS): Lake Formation's union, cell by cell."""

from __future__ import annotations

from lakegov.governance.access import role_arn
from lakegov.governance.table_grant import GrantPart, TableGrant, combine

COLUMNS = ["id", "country", "card_number"]


def test_a_whole_table_grant_outweighs_any_filter() -> None:
    grant = combine(
        [GrantPart(None, None), GrantPart(frozenset({"id"}), "country = 'FR'")], COLUMNS
    )
    assert grant == TableGrant(None, None)


def test_filters_with_the_same_columns_or_their_rows() -> None:
    grant = combine(
        [
            GrantPart(frozenset({"id"}), "country = 'FR'"),
            GrantPart(frozenset({"id"}), "country = 'DE'"),
        ],
        COLUMNS,
    )
    assert grant == TableGrant(frozenset({"id"}), "(country = 'DE') OR (country = 'FR')")


def test_a_column_list_on_all_rows_and_a_row_filter_on_all_columns_make_cells() -> None:
    """id everywhere; the other columns only on French rows."""
    grant = combine(
        [GrantPart(frozenset({"id"}), None), GrantPart(None, "country = 'FR'")], COLUMNS
    )
    assert grant.columns is None and grant.row_filter is None
    assert grant.cell_filters == (
        ("card_number", "country = 'FR'"),
        ("country", "country = 'FR'"),
    )
    assert grant.to_dict()["cell_filters"][0] == {
        "column": "card_number",
        "predicate": "country = 'FR'",
    }
    assert TableGrant.from_dict(grant.to_dict()) == grant


def test_sessions_are_their_roles_and_other_arns_are_left_alone() -> None:
    assert role_arn("arn:aws:sts::123456789012:assumed-role/analyst/alice") == (
        "arn:aws:iam::123456789012:role/analyst"
    )
    user = "arn:aws:iam::123456789012:user/bob"
    assert role_arn(user) == user
    assert TableGrant(frozenset({"id"}), None).missing(["ID", "country"]) == ["country"]
