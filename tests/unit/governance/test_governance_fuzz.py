"""Property: any JSON value -> the validator never crashes, and every error has a path."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakegov.errors import InvalidDocument
from lakegov.governance import Guardrails, parse_document, validate

FIELDS = [
    "role_arn",
    "principal",
    "access_type",
    "lf_tags",
    "named_data_catalog",
    "table_permissions",
    "database_permissions",
    "grant_option",
    "data_locations",
    "TagKey",
    "TagValues",
    "Database",
    "Table",
    "Columns",
    "ExcludedColumns",
    "DataCellsFilter",
    "version",
    "entries",
    "assignments",
    "data_cells_filters",
    "Name",
    "RowFilter",
    "description",
]
WORDS = [
    "GRANT",
    "REVOKE",
    "SELECT",
    "ALL",
    "CREATE_TABLE",
    "*",
    " blog",
    "sales",
    "",
    "arn:aws:iam::123456789012:role/r",
    "IAM_ALLOWED_PRINCIPALS",
    "arn:aws:s3:::b/p",
    "Sales ",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(WORDS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=40,
)


def check(document: Any, guardrails: Guardrails | None = None) -> None:
    try:
        result = validate(document, source="fuzz.json", guardrails=guardrails)
    except InvalidDocument as exc:
        errors = [i for i in exc.issues if i.severity == "error"]
        assert errors, "refused without an error"
        for issue in exc.issues:
            assert issue.path.startswith("$") and issue.message
        return
    for warning in result.warnings:
        assert warning.severity == "warning" and warning.path.startswith("$")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_any_json_never_crashes_and_errors_have_paths(document: Any) -> None:
    check(document)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8), max_size=4),
    st.booleans(),
)
def test_entry_shaped_documents_never_crash(entries: list[dict[str, Any]], strict: bool) -> None:
    check(
        entries,
        Guardrails(
            refuse_stray_spaces=strict,
            allow_cross_account=not strict,
            home_account_id="123456789012",
        ),
    )
    check(
        {
            "version": 1,
            "entries": entries,
            "assignments": entries,
            "lf_tags": entries,
            "data_cells_filters": entries,
        }
    )


def test_deep_nesting_is_refused_not_crashed() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    check(deep)
    check({"version": 1, "entries": [{"access_type": "GRANT", "lf_tags": deep}]})
    nested_text = "[" * 50_000 + "]" * 50_000
    try:
        check(parse_document(nested_text))
    except InvalidDocument as exc:
        assert exc.issues[0].path == "$"
