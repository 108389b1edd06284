"""Dataset patterns become EventBridge patterns that match exactly what was asked for."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.events.models import EventPattern

from lakegov.mesh.patterns import (
    PatternTooLarge,
    build_patterns,
    classify,
    compact,
    dataset_matches,
    has_wildcard,
    pattern_problems,
    redundant_patterns,
)


def _event(dataset, detail_type="DatasetRefreshed", source="lakegov"):
    return {
        "version": "0",
        "id": "1",
        "source": source,
        "detail-type": detail_type,
        "account": "111111111111",
        "time": "2026-11-20T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"dataset": dataset, "database": "db", "table": "t"},
    }


def _delivered(patterns, event):
    """What EventBridge (as moto implements its matcher) would deliver: any rule matches."""
    return any(EventPattern.load(compact(p)).matches_event(event) for p in patterns)


@pytest.mark.parametrize(
    ("pattern", "kind", "filter_"),
    [
        ("sales/orders", "exact", "sales/orders"),
        ("sales/*", "prefix", {"prefix": "sales/"}),
        ("*_daily", "suffix", {"suffix": "_daily"}),
        ("*orders*", "wildcard", {"wildcard": "*orders*"}),
        ("sales/*/daily", "wildcard", {"wildcard": "sales/*/daily"}),
    ],
)
def test_each_pattern_form_uses_the_cheapest_eventbridge_operator(pattern, kind, filter_):
    # Given a dataset pattern / When it is classified / Then prefix and suffix avoid wildcard
    got = classify(pattern)
    assert (got.kind, got.filter) == (kind, filter_)


def test_a_domain_receives_what_it_subscribed_to_and_nothing_else():
    # Given a subscription with an exact name, a prefix, a suffix and a wildcard
    patterns = build_patterns(
        ["DatasetRefreshed"], ["mwaa/blog/customers", "sales/*", "*_daily", "*orders*"]
    )
    # Then the generated rules deliver exactly the matching datasets...
    for dataset in [
        "mwaa/blog/customers",
        "sales/eu",
        "sales/",
        "web/visits_daily",
        "shop/orders",
        "orders",
    ]:
        assert _delivered(patterns, _event(dataset)), dataset
    for dataset in [
        "mwaa/blog/customers2",
        "mwaa/blog",
        "presales/eu",
        "web/daily_visits",
        "shop/order",
        "Sales/eu",
    ]:
        assert not _delivered(patterns, _event(dataset)), dataset
    # ...of the subscribed event types and from lakegov only
    assert not _delivered(patterns, _event("sales/eu", detail_type="SchemaChanged"))
    assert not _delivered(patterns, _event("sales/eu", source="someone.else"))


def test_match_all_needs_no_dataset_filter_and_is_refused_unless_allowed():
    assert build_patterns(["DatasetRefreshed"], ["*", "sales/*"]) == [
        {"source": ["lakegov"], "detail-type": ["DatasetRefreshed"]}
    ]
    assert pattern_problems("*", allow_all=False)
    assert pattern_problems("*", allow_all=True) == []
    assert pattern_problems("***", allow_all=True)
    assert pattern_problems("sales/**", allow_all=False)
    assert pattern_problems("sales/*", allow_all=False) == []


def test_many_patterns_are_split_into_rules_within_the_size_quota_wildcards_apart():
    # Given 300 exact names, 40 prefixes and 20 wildcards
    datasets = [f"domain{i:03d}/table_with_a_long_name_{i:03d}" for i in range(300)]
    datasets += [f"area{i:02d}/*" for i in range(40)]
    datasets += [f"*kind{i:02d}*" for i in range(20)]
    # When the patterns are built with the default 2,048-character quota
    patterns = build_patterns(["DatasetRefreshed", "SchemaChanged"], datasets)
    # Then every pattern fits, wildcard filters never share a rule with the others...
    assert len(patterns) > 5
    assert all(len(compact(p)) <= 2048 for p in patterns)
    wild = [p for p in patterns if has_wildcard(p)]
    assert wild and all(
        all(isinstance(f, dict) and "wildcard" in f for f in p["detail"]["dataset"]) for p in wild
    )
    # ...every filter appears exactly once, and the order of the input does not matter
    filters = [json.dumps(f, sort_keys=True) for p in patterns for f in p["detail"]["dataset"]]
    assert len(filters) == len(set(filters)) == len(datasets)
    assert build_patterns(["SchemaChanged", "DatasetRefreshed"], reversed(datasets)) == patterns
    # and a smaller quota gives more rules
    assert len(build_patterns(["DatasetRefreshed"], datasets, max_chars=1024)) > len(patterns)


def test_a_filter_that_cannot_fit_in_any_pattern_is_an_error():
    with pytest.raises(PatternTooLarge, match="over 120 characters"):
        build_patterns(["DatasetRefreshed"], ["x" * 100], max_chars=120)


def test_literal_patterns_covered_by_a_broader_one_are_reported():
    assert redundant_patterns(["sales/*", "sales/eu", "hr/people", "*people"]) == {
        "sales/eu": "sales/*",
        "hr/people": "*people",
    }


_ALPHABET = "ab/_"
_names = st.text(alphabet=_ALPHABET, min_size=0, max_size=6)


@st.composite
def _patterns(draw):
    pieces = draw(st.lists(_names, min_size=1, max_size=4))
    pattern = "*".join(pieces)
    if not pattern or set(pattern) == {"*"} or "**" in pattern:
        pattern = pieces[0] + "x"
    return pattern


@settings(max_examples=150, deadline=None)
@given(st.lists(_patterns(), min_size=1, max_size=5, unique=True), _names)
def test_generated_rules_agree_with_the_reference_matcher(patterns, dataset):
    # Given any patterns and any dataset name / Then EventBridge's matcher (moto's) on the
    # generated rules agrees with the documented meaning of '*'
    rules = build_patterns(["DatasetRefreshed"], patterns, max_chars=200)
    expected = any(dataset_matches(p, dataset) for p in patterns)
    assert _delivered(rules, _event(dataset)) == expected


def test_a_domain_subscribed_to_lineage_receives_its_datasets_lineage_only():
    patterns = build_patterns(["DatasetRefreshed", "LineageRecorded"], ["sales/*"])
    assert _delivered(patterns, _event("sales/eu", detail_type="LineageRecorded"))
    assert not _delivered(patterns, _event("web/visits", detail_type="LineageRecorded"))
    # a domain that did not ask for lineage does not get it
    refreshes_only = build_patterns(["DatasetRefreshed"], ["sales/*"])
    assert not _delivered(refreshes_only, _event("sales/eu", detail_type="LineageRecorded"))
