"""A consumer account's grant to its role, within what the producer shared with the account."""

from lakegov.governance.table_grant import TableGrant, within


def test_columns_narrow_to_both_and_row_filters_all_apply():
    role = TableGrant(frozenset({"id", "email", "name"}), "country = 'FR'")
    shared = TableGrant(frozenset({"id", "name", "dob"}), "active")
    assert within(role, shared) == TableGrant(
        frozenset({"id", "name"}), "(active) AND (country = 'FR')"
    )


def test_every_column_on_one_side_leaves_the_other_side_s_columns():
    assert within(TableGrant(None, None), TableGrant(frozenset({"id"}), None)) == TableGrant(
        frozenset({"id"}), None
    )
    assert within(TableGrant(frozenset({"id"}), "x"), TableGrant(None, None)) == TableGrant(
        frozenset({"id"}), "x"
    )


def test_no_column_in_common_is_no_access_and_cell_filters_combine_per_column():
    assert within(TableGrant(frozenset({"a"}), None), TableGrant(frozenset({"b"}), None)) is None
    role = TableGrant(None, None, (("email", "p1"),))
    shared = TableGrant(None, None, (("email", "p2"), ("dob", "p3")))
    assert within(role, shared) == TableGrant(
        None, None, (("dob", "p3"), ("email", "(p1) AND (p2)"))
    )
