"""Per-file schema decisions against a table, by policy (no AWS)."""

from __future__ import annotations

import pytest

from lakegov.catalog.converted import ConvertedFile
from lakegov.catalog.evolution import evolve
from lakegov.schema import Column
from lakegov.settings import Settings

SETTINGS = Settings(
    "dev", "us-east-1", "raw", "fmt", "cfg", "bus", "audit", glue_database_prefix="lg_"
)
TABLE = [Column("id", "bigint"), Column("name", "string")]


def _file(version, keys=("partition_dt",), policy="additive"):
    folder = "".join(f"{k}=1/" for k in keys)
    return ConvertedFile.from_detail(
        {
            "bucket": "raw",
            "key": f"x/{version}.csv",
            "version_id": version,
            "table": "t",
            "output_bucket": "fmt",
            "output_keys": [f"formatted_stg/t/{folder}{version}.parquet"],
            "schema_changes": policy,
            "converted_at": f"2026-01-01T00:00:0{version[-1]}Z",
        },
        SETTINGS,
    )


def test_the_first_file_defines_a_new_table():
    evo = evolve(None, None, [(_file("v1"), TABLE)])
    assert evo.columns == TABLE and evo.partition_keys == ("partition_dt",) and evo.changed
    assert evo.decisions[0].schema_changed("db", "now") is None


def test_changes_accumulate_file_by_file():
    files = [
        (_file("v1"), [*TABLE, Column("a", "int")]),
        (_file("v2"), [*TABLE, Column("a", "bigint"), Column("b", "date")]),
    ]
    evo = evolve(TABLE, ("partition_dt",), files)
    assert [d.change for d in evo.decisions] == ["additive", "additive"]
    assert evo.columns == [*TABLE, Column("a", "bigint"), Column("b", "date")]


@pytest.mark.parametrize(
    ("policy", "additive_ok", "breaking_ok"),
    [("additive", True, False), ("any", True, True), ("none", False, False)],
)
def test_the_dataset_policy_decides(policy, additive_ok, breaking_ok):
    additive = evolve(
        TABLE, ("partition_dt",), [(_file("v1", policy=policy), [*TABLE, Column("x", "int")])]
    )
    breaking = evolve(
        TABLE, ("partition_dt",), [(_file("v1", policy=policy), [Column("id", "string")])]
    )
    assert additive.decisions[0].accepted is additive_ok
    assert breaking.decisions[0].accepted is breaking_ok
    event = breaking.decisions[0].schema_changed("db", "2026-01-01T00:00:00Z")
    assert event["action"] == ("applied" if breaking_ok else "rejected")
    assert event["policy"] == policy


def test_a_rejected_file_leaves_the_columns_as_they_were():
    evo = evolve(TABLE, ("partition_dt",), [(_file("v1"), [Column("id", "string")])])
    assert evo.columns == TABLE and not evo.changed and evo.accepted == []


def test_a_different_partition_layout_is_rejected_even_when_any_change_is_allowed():
    evo = evolve(TABLE, ("partition_dt",), [(_file("v1", ("a", "b"), policy="any"), TABLE)])
    (decision,) = evo.decisions
    assert not decision.accepted and decision.change == "breaking"
    assert "partition keys" in decision.reason


def test_a_data_column_named_like_a_partition_key_is_left_to_the_folder():
    evo = evolve(None, None, [(_file("v1"), [*TABLE, Column("partition_dt", "date")])])
    assert [c.name for c in evo.columns] == ["id", "name"]
