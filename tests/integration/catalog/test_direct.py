"""Direct registration on moto: table, partitions, schema evolution, duplicates."""

from __future__ import annotations

import pyarrow as pa
import pytest
from tests.conftest import RefusingEvents
from tests.integration.catalog.support import (
    FORMATTED,
    STAGING,
    count_calls,
    file_converted,
    messages,
)

from lakegov.catalog.glue import PARQUET_SERDE
from lakegov.catalog.service import process_batch
from lakegov.events import validate_detail

CUSTOMERS = pa.table(
    {
        "id": pa.array([1, 2], pa.int64()),
        "name": ["ann", "bob"],
        "address": pa.array(
            [{"city": "Oslo", "zip": 1}, {"city": "Rome", "zip": 2}],
            pa.struct([("city", pa.string()), ("zip", pa.int32())]),
        ),
        "tags": pa.array([["a"], []], pa.list_(pa.string())),
        "amount": pa.array([1.5, 2.5], pa.float64()),
        "joined": pa.array([0, 1], pa.timestamp("us")),
    }
)


def _table(env, name="customers"):
    return env.glue.get_table(DatabaseName=STAGING, Name=name)["Table"]


def _partitions(env, name="customers"):
    pages = env.glue.get_paginator("get_partitions").paginate(DatabaseName=STAGING, TableName=name)
    return sorted(tuple(p["Values"]) for page in pages for p in page["Partitions"])


def test_a_new_dataset_gets_a_parquet_table_with_its_partition_and_a_refresh_event(env):
    # Given a converted file in a new dataset's partition
    detail = file_converted("customers", CUSTOMERS, s3=env.s3)
    # When the catalog handles its FileConverted
    result = process_batch(messages(detail), env.services())
    # Then the table exists with Hive types from the Parquet footer, Parquet SerDe, location
    assert result.failed == []
    table = _table(env)
    sd = table["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == [
        ("id", "bigint"),
        ("name", "string"),
        ("address", "struct<city:string,zip:int>"),
        ("tags", "array<string>"),
        ("amount", "double"),
        ("joined", "timestamp"),
    ]
    assert sd["Location"] == f"s3://{FORMATTED}/formatted_stg/customers/"
    assert sd["SerdeInfo"]["SerializationLibrary"] == PARQUET_SERDE
    assert table["PartitionKeys"] == [{"Name": "partition_dt", "Type": "string"}]
    assert table["Parameters"]["classification"] == "parquet"
    # And its partition, located in its folder
    part = env.glue.get_partition(
        DatabaseName=STAGING, TableName="customers", PartitionValues=["2026-11-20"]
    )["Partition"]
    assert part["StorageDescriptor"]["Location"].endswith("/customers/partition_dt=2026-11-20/")
    # And one DatasetRefreshed (valid against its contract) says what changed
    (refreshed,) = env.published("DatasetRefreshed")
    validate_detail("DatasetRefreshed", refreshed)
    assert refreshed["database"] == STAGING and refreshed["table"] == "customers"
    assert refreshed["partitions"] == [{"partition_dt": "2026-11-20"}]
    assert refreshed["row_count"] == 2 and refreshed["mode"] == "direct"
    assert refreshed["source_files"] == ["s3://lakegov-raw/landing/customers/v1.csv"]
    assert env.published("SchemaChanged") == []
    # And the file is audited as processed
    item = env.audit.get("catalog", "s3://lakegov-raw/landing/customers/v1.csv", "v1")
    assert item["status"] == "PROCESSED"


def test_a_file_in_an_existing_partition_registers_nothing_new_and_still_refreshes(env):
    # Given a table whose partition is registered
    process_batch(messages(file_converted("customers", CUSTOMERS, s3=env.s3)), env.services())
    # When another file lands in the same partition
    second = file_converted("customers", CUSTOMERS, s3=env.s3, version="v2")
    result = process_batch(messages(second), env.services())
    # Then the partition counts as existing (no error), and the refresh is announced
    assert result.failed == []
    (outcome,) = result.outcomes
    assert (outcome.partitions_created, outcome.partitions_existing) == (0, 1)
    assert _partitions(env) == [("2026-11-20",)]
    assert len(env.published("DatasetRefreshed")) == 2


def test_partitions_are_registered_in_chunks_of_at_most_one_hundred(env):
    # Given one conversion that wrote 250 partitions (an Athena backfill, say)
    parts = [{"partition_dt": f"2026-01-01-{h:03d}"} for h in range(250)]
    detail = file_converted("events", CUSTOMERS, parts, s3=env.s3, write_all=False)
    calls = count_calls(env.glue, "BatchCreatePartition")
    # When the catalog registers them
    result = process_batch(messages(detail), env.services())
    # Then three calls of 100, 100 and 50 partitions add all 250
    assert result.failed == []
    assert [len(c["PartitionInputList"]) for c in calls] == [100, 100, 50]
    assert len(_partitions(env, "events")) == 250
    (refreshed,) = env.published("DatasetRefreshed")
    assert len(refreshed["partitions"]) == 250


def test_a_burst_in_one_batch_costs_one_table_read_and_one_partition_call(env):
    # Given ten converted files of one dataset, in five partitions, in one queue batch
    details = [
        file_converted(
            "customers",
            CUSTOMERS,
            [{"partition_dt": f"2026-11-2{i % 5}"}],
            s3=env.s3,
            version=f"v{i}",
        )
        for i in range(10)
    ]
    gets = count_calls(env.glue, "GetTable")
    creates = count_calls(env.glue, "BatchCreatePartition")
    # When the catalog handles the batch
    result = process_batch(messages(*details), env.services())
    # Then the five partitions went in one call, and one refresh names all ten files
    assert result.failed == []
    assert len(creates) == 1 and len(creates[0]["PartitionInputList"]) == 5
    assert len(gets) <= 2  # the read before creating, and the read after
    (refreshed,) = env.published("DatasetRefreshed")
    assert len(refreshed["source_files"]) == 10 and refreshed["row_count"] == 20


def test_an_additive_change_is_applied_to_the_table_and_announced(env):
    # Given a registered table
    process_batch(messages(file_converted("customers", CUSTOMERS, s3=env.s3)), env.services())
    # When a file brings a new column and widens an int to a bigint inside a struct
    wider = CUSTOMERS.append_column("email", pa.array(["a@x", "b@x"])).set_column(
        2,
        "address",
        pa.array(
            [{"city": "Oslo", "zip": 1}, {"city": "Rome", "zip": 2}],
            pa.struct([("city", pa.string()), ("zip", pa.int64())]),
        ),
    )
    detail = file_converted(
        "customers", wider, [{"partition_dt": "2026-11-21"}], s3=env.s3, version="v2"
    )
    process_batch(messages(detail), env.services())
    # Then the table has the new column and the wider type, and the partition is registered
    columns = {c["Name"]: c["Type"] for c in _table(env)["StorageDescriptor"]["Columns"]}
    assert columns["email"] == "string"
    assert columns["address"] == "struct<city:string,zip:bigint>"
    assert _partitions(env) == [("2026-11-20",), ("2026-11-21",)]
    # And SchemaChanged says additive/applied with the difference
    (changed,) = env.published("SchemaChanged")
    validate_detail("SchemaChanged", changed)
    assert (changed["change"], changed["action"]) == ("additive", "applied")
    assert changed["added"] == [{"name": "email", "type": "string"}]
    assert changed["changed"] == [
        {
            "name": "address",
            "from": "struct<city:string,zip:int>",
            "to": "struct<city:string,zip:bigint>",
        }
    ]


def test_a_breaking_change_is_rejected_by_default_and_changes_nothing(env):
    # Given a registered table
    process_batch(messages(file_converted("customers", CUSTOMERS, s3=env.s3)), env.services())
    before = _table(env)["StorageDescriptor"]["Columns"]
    # When a file retypes a column (bigint -> string) and drops another
    broken = CUSTOMERS.drop_columns(["tags"]).set_column(0, "id", pa.array(["1", "2"]))
    detail = file_converted(
        "customers", broken, [{"partition_dt": "2026-11-22"}], s3=env.s3, version="v2"
    )
    result = process_batch(messages(detail), env.services())
    # Then the table is unchanged and the new partition is not registered
    assert result.failed == []
    assert _table(env)["StorageDescriptor"]["Columns"] == before
    assert _partitions(env) == [("2026-11-20",)]
    # And SchemaChanged says breaking/rejected with the difference, and no refresh follows
    (changed,) = env.published("SchemaChanged")
    validate_detail("SchemaChanged", changed)
    assert (changed["change"], changed["action"], changed["policy"]) == (
        "breaking",
        "rejected",
        "additive",
    )
    assert changed["removed"] == [{"name": "tags", "type": "array<string>"}]
    assert changed["changed"] == [{"name": "id", "from": "bigint", "to": "string"}]
    assert len(env.published("DatasetRefreshed")) == 1  # the first file's only
    item = env.audit.get("catalog", detail and f"s3://lakegov-raw/{detail['key']}", "v2")
    assert item["status"] == "REJECTED" and "breaking" in item["history"][-1]["note"]


def test_a_breaking_change_is_applied_when_the_dataset_allows_any_change(env):
    process_batch(messages(file_converted("customers", CUSTOMERS, s3=env.s3)), env.services())
    broken = CUSTOMERS.set_column(0, "id", pa.array(["1", "2"]))
    detail = file_converted(
        "customers",
        broken,
        [{"partition_dt": "2026-11-22"}],
        s3=env.s3,
        version="v2",
        schema_changes="any",
    )
    process_batch(messages(detail), env.services())
    columns = {c["Name"]: c["Type"] for c in _table(env)["StorageDescriptor"]["Columns"]}
    assert columns["id"] == "string"
    (changed,) = env.published("SchemaChanged")
    assert (changed["change"], changed["action"]) == ("breaking", "applied")
    assert ("2026-11-22",) in _partitions(env)


def test_an_additive_change_is_rejected_when_the_dataset_allows_none(env):
    process_batch(messages(file_converted("customers", CUSTOMERS, s3=env.s3)), env.services())
    wider = CUSTOMERS.append_column("email", pa.array(["a@x", "b@x"]))
    detail = file_converted(
        "customers",
        wider,
        [{"partition_dt": "2026-11-22"}],
        s3=env.s3,
        version="v2",
        schema_changes="none",
    )
    process_batch(messages(detail), env.services())
    assert "email" not in {c["Name"] for c in _table(env)["StorageDescriptor"]["Columns"]}
    (changed,) = env.published("SchemaChanged")
    assert (changed["change"], changed["action"]) == ("additive", "rejected")


def test_a_column_that_was_only_nulls_takes_its_first_real_type_as_an_additive_change(env):
    nulls = pa.table({"id": pa.array([1], pa.int64()), "note": pa.array([None], pa.null())})
    process_batch(messages(file_converted("notes", nulls, s3=env.s3)), env.services())
    assert _table(env, "notes")["Parameters"]["lakegov.untyped_columns"] == "note"
    typed = pa.table({"id": pa.array([2], pa.int64()), "note": pa.array([7], pa.int32())})
    detail = file_converted(
        "notes", typed, [{"partition_dt": "2026-11-21"}], s3=env.s3, version="v2"
    )
    process_batch(messages(detail), env.services())
    table = _table(env, "notes")
    assert {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}["note"] == "int"
    assert "lakegov.untyped_columns" not in table["Parameters"]
    (changed,) = env.published("SchemaChanged")
    assert (changed["change"], changed["action"]) == ("additive", "applied")


def test_a_duplicate_event_changes_nothing_and_publishes_nothing(env):
    # Given a file already catalogued
    detail = file_converted("customers", CUSTOMERS, s3=env.s3)
    process_batch(messages(detail), env.services())
    calls = count_calls(env.glue, "BatchCreatePartition")
    # When its FileConverted is delivered again
    result = process_batch(messages(detail), env.services())
    # Then nothing is called or published a second time
    assert result.duplicates == 1 and result.failed == []
    assert calls == []
    assert len(env.published("DatasetRefreshed")) == 1


def test_a_duplicate_inside_one_batch_is_retried_then_recognised(env):
    # Given the same FileConverted twice in one batch
    detail = file_converted("customers", CUSTOMERS, s3=env.s3)
    batch = messages(detail, detail)
    # When the batch is handled, the second copy finds the first one's claim in progress
    first = process_batch(batch, env.services())
    assert first.failed == ["m1"]
    # Then its retry is a duplicate: one refresh in all
    again = process_batch(batch[1:], env.services())
    assert again.duplicates == 1 and again.failed == []
    assert len(env.published("DatasetRefreshed")) == 1


def test_a_dataset_with_very_many_date_partitions_switches_to_projection(env):
    # Given a projection threshold of 3 partitions
    svc = env.services(
        settings=env.settings.__class__(
            **{**env.settings.__dict__, "partition_projection_threshold": 3}
        )
    )
    for day in range(1, 5):
        detail = file_converted(
            "clicks",
            CUSTOMERS,
            [{"partition_dt": f"2026-11-0{day}"}],
            s3=env.s3,
            version=f"v{day}",
        )
        process_batch(messages(detail), svc)
    # When the fourth partition crosses the threshold, the table is projected from the layout
    params = _table(env, "clicks")["Parameters"]
    assert params["projection.enabled"] == "true"
    assert params["projection.partition_dt.type"] == "date"
    assert params["projection.partition_dt.format"] == "yyyy-MM-dd"
    assert params["projection.partition_dt.range"] == "2026-11-01,NOW"
    assert params["storage.location.template"] == (
        f"s3://{FORMATTED}/formatted_stg/clicks/partition_dt=${{partition_dt}}/"
    )
    # Then later partitions need no registration call, and an older one widens the range
    calls = count_calls(env.glue, "BatchCreatePartition")
    older = file_converted(
        "clicks", CUSTOMERS, [{"partition_dt": "2026-10-30"}], s3=env.s3, version="v9"
    )
    process_batch(messages(older), svc)
    assert calls == []
    assert _table(env, "clicks")["Parameters"]["projection.partition_dt.range"] == (
        "2026-10-30,NOW"
    )
    assert env.published("DatasetRefreshed")[-1]["partitions"] == [{"partition_dt": "2026-10-30"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "output_keys": [
                    "formatted_stg/customers/x=1/a.parquet",
                    "formatted_stg/other/b.parquet",
                ]
            },
            "two tables",
        ),
        ({"catalog_mode": "sometimes"}, "catalog_mode"),
        ({"output_keys": ["formatted_stg/customers/not-a-partition/a.parquet"]}, "key=value"),
    ],
)
def test_an_event_the_catalog_cannot_use_is_dropped_with_a_reason(env, change, message, caplog):
    detail = {**file_converted("customers", CUSTOMERS, s3=env.s3), **change}
    result = process_batch(messages(detail), env.services())
    assert result.failed == [] and result.outcomes == []
    assert env.published("DatasetRefreshed") == []
    assert message in caplog.text or any(message in str(r.__dict__) for r in caplog.records)


def test_a_missing_parquet_object_is_audited_as_rejected_not_retried_forever(env):
    detail = file_converted("customers", CUSTOMERS)  # nothing written to S3
    result = process_batch(messages(detail), env.services())
    assert result.failed == []
    item = env.audit.get("catalog", f"s3://lakegov-raw/{detail['key']}", "v1")
    assert item["status"] == "REJECTED"
    with pytest.raises(env.glue.exceptions.EntityNotFoundException):
        _table(env)


def test_a_throttled_catalog_retries_the_batch_and_the_retry_goes_through(env):
    # Given Glue throttling GetTable once
    throttled = []

    def throttle(**_):
        if not throttled:
            throttled.append(True)
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            return None, {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    env.glue.meta.events.register("before-call.glue.GetTable", throttle)
    detail = file_converted("customers", CUSTOMERS, s3=env.s3)
    # When the batch is handled, its message is handed back for a retry, the claim released
    first = process_batch(messages(detail), env.services())
    assert first.failed == ["m0"]
    assert env.audit.get("catalog", f"s3://lakegov-raw/{detail['key']}", "v1")["status"] == "FAILED"
    # Then the retry registers the file and announces it once
    again = process_batch(messages(detail), env.services())
    assert again.failed == [] and len(env.published("DatasetRefreshed")) == 1


def test_the_refreshes_of_one_batch_share_one_put_events_call(env):
    # Given a batch with files of three tables
    details = [
        file_converted(name, CUSTOMERS, s3=env.s3, source_key=f"landing/{name}.csv")
        for name in ("customers", "orders", "cards")
    ]
    calls = count_calls(env.events, "PutEvents")
    # When the catalog handles it
    result = process_batch(messages(*details), env.services())
    # Then the three DatasetRefreshed went out in one call
    assert result.failed == []
    assert [len(c["Entries"]) for c in calls] == [3]
    assert sorted(r["table"] for r in env.published("DatasetRefreshed")) == [
        "cards",
        "customers",
        "orders",
    ]


def test_a_refresh_that_cannot_be_published_fails_only_its_table_s_messages(env):
    # Given PutEvents refusing the orders table's DatasetRefreshed on every attempt
    details = [
        file_converted(name, CUSTOMERS, s3=env.s3, source_key=f"landing/{name}.csv")
        for name in ("customers", "orders")
    ]
    refusing = RefusingEvents(env.events, '"table":"orders"', times=3)
    env.publisher.events_client = refusing
    # When the batch is handled
    result = process_batch(messages(*details), env.services())
    # Then only the orders message comes back, its claim released, its file not PROCESSED
    assert result.failed == ["m1"]
    assert refusing.calls == [2, 1, 1]  # only the failed entry sent again
    assert env.audit.get("catalog", "s3://lakegov-raw/landing/orders.csv", "v1")["status"] == (
        "FAILED"
    )
    assert env.audit.get("catalog", "s3://lakegov-raw/landing/customers.csv", "v1")["status"] == (
        "PROCESSED"
    )
    assert [r["table"] for r in env.published("DatasetRefreshed")] == ["customers"]
    # And the whole batch delivered again publishes orders once and customers not again
    again = process_batch(messages(*details), env.services())
    assert again.failed == [] and again.duplicates == 1
    assert sorted(r["table"] for r in env.published("DatasetRefreshed")) == ["customers", "orders"]


def test_a_new_table_costs_a_read_a_create_and_a_partition_call_and_counts_its_partitions(env):
    detail = file_converted(
        "customers",
        CUSTOMERS,
        [{"partition_dt": "2026-11-20"}, {"partition_dt": "2026-11-21"}],
        s3=env.s3,
    )
    calls = {
        op: count_calls(env.glue, op)
        for op in ("GetTable", "CreateTable", "BatchCreatePartition", "UpdateTable")
    }
    assert process_batch(messages(detail), env.services()).failed == []
    assert {op: len(c) for op, c in calls.items()} == {
        "GetTable": 1,  # the table is missing: created, not read back
        "CreateTable": 1,
        "BatchCreatePartition": 1,
        "UpdateTable": 0,  # its two partitions were counted when it was created
    }
    assert _table(env)["Parameters"]["lakegov.partition_count"] == "2"
    # a further file in a registered partition: a read and a partition call, nothing else
    for c in calls.values():
        c.clear()
    second = file_converted(
        "customers", CUSTOMERS, [{"partition_dt": "2026-11-21"}], s3=env.s3, version="v2"
    )
    assert process_batch(messages(second), env.services()).failed == []
    assert {op: len(c) for op, c in calls.items()} == {
        "GetTable": 1,
        "CreateTable": 0,
        "BatchCreatePartition": 1,
        "UpdateTable": 0,
    }
    # a new partition of the table: its count goes up by one
    third = file_converted(
        "customers", CUSTOMERS, [{"partition_dt": "2026-11-22"}], s3=env.s3, version="v3"
    )
    assert process_batch(messages(third), env.services()).failed == []
    assert _table(env)["Parameters"]["lakegov.partition_count"] == "3"


def test_a_partition_count_that_ran_ahead_is_corrected_by_the_listing_not_projected(env):
    # Given a table whose count says 5 partitions while only 2 exist (a creation that
    # counted its partitions, then failed to register them, and was retried)
    svc = env.services(
        settings=env.settings.__class__(
            **{**env.settings.__dict__, "partition_projection_threshold": 3}
        )
    )
    process_batch(
        messages(
            file_converted(
                "clicks",
                CUSTOMERS,
                [{"partition_dt": "2026-11-01"}],
                s3=env.s3,
            )
        ),
        svc,
    )
    table = _table(env, "clicks")
    table_input = {k: table[k] for k in ("Name", "StorageDescriptor", "PartitionKeys", "TableType")}
    table_input["Parameters"] = {**table["Parameters"], "lakegov.partition_count": "5"}
    env.glue.update_table(DatabaseName=STAGING, TableInput=table_input)
    # When a second partition is registered (the count now says 6, over the threshold)
    process_batch(
        messages(
            file_converted(
                "clicks", CUSTOMERS, [{"partition_dt": "2026-11-02"}], s3=env.s3, version="v2"
            )
        ),
        svc,
    )
    # Then the listing finds 2: no projection, and the count is the listing's
    params = _table(env, "clicks")["Parameters"]
    assert "projection.enabled" not in params
    assert params["lakegov.partition_count"] == "2"


def test_a_version_superseded_before_it_was_registered_leaves_the_newer_one_registered(env):
    from lakegov.audit import CURRENT_VERSION_KIND

    # Given two versions of one landed file converted in quick succession: the newer
    # conversion (now the current version) removed the older one's output before the
    # catalog saw either
    key = "landing/race/r.csv"
    older = file_converted("race", CUSTOMERS, s3=env.s3, source_key=key, version="v1")
    newer = file_converted("race", CUSTOMERS, s3=env.s3, source_key=key, version="v2")
    env.s3.delete_object(Bucket=FORMATTED, Key=older["output_keys"][0])
    env.audit.advance_pointer(
        CURRENT_VERSION_KIND, f"s3://lakegov-raw/{key}", order="2", version="v2", attributes={}
    )
    # And, in the same table, a file whose own current output is missing
    lost = file_converted("race", CUSTOMERS, s3=env.s3, source_key="landing/race/l.csv")
    env.s3.delete_object(Bucket=FORMATTED, Key=lost["output_keys"][0])
    # When their FileConverted arrive in one batch, the older first
    result = process_batch(messages(older, lost, newer), env.services())
    # Then the newer is registered and announced, the older superseded, the lost one
    # rejected alone
    assert result.failed == []
    assert _partitions(env, "race") == [("2026-11-20",)]
    (refreshed,) = env.published("DatasetRefreshed")
    assert refreshed["source_files"] == [f"s3://lakegov-raw/{key}"]

    def status(source: str, version: str) -> str:
        return str(env.audit.get("catalog", f"s3://lakegov-raw/{source}", version)["status"])

    assert (status(key, "v1"), status(key, "v2")) == ("SUPERSEDED", "PROCESSED")
    assert status("landing/race/l.csv", "v1") == "REJECTED"
    # And a superseded version arriving alone, later, is superseded too (nothing retried)
    late = file_converted("race", CUSTOMERS, s3=env.s3, source_key=key, version="v0")
    env.s3.delete_object(Bucket=FORMATTED, Key=late["output_keys"][0])
    assert process_batch(messages(late), env.services()).failed == []
    assert status(key, "v0") == "SUPERSEDED"
    assert len(env.published("DatasetRefreshed")) == 1


def test_an_empty_output_is_still_rejected(env):
    detail = file_converted("hollow", CUSTOMERS, s3=env.s3)
    env.s3.put_object(Bucket=FORMATTED, Key=detail["output_keys"][0], Body=b"")
    assert process_batch(messages(detail), env.services()).failed == []
    item = env.audit.get("catalog", "s3://lakegov-raw/landing/hollow/v1.csv", "v1")
    assert item["status"] == "REJECTED" and "0 bytes" in item["history"][-1]["note"]


def test_a_superseded_version_arriving_after_the_newer_one_is_superseded_too(env):
    from lakegov.audit import CURRENT_VERSION_KIND

    # Given the newer version first and the older, whose output it replaced, after it:
    # one schema, so only one footer is read for both
    key = "landing/race/r.csv"
    newer = file_converted("race", CUSTOMERS, s3=env.s3, source_key=key, version="v2")
    older = file_converted("race", CUSTOMERS, s3=env.s3, source_key=key, version="v1")
    env.s3.delete_object(Bucket=FORMATTED, Key=older["output_keys"][0])
    env.audit.advance_pointer(
        CURRENT_VERSION_KIND, f"s3://lakegov-raw/{key}", order="2", version="v2", attributes={}
    )
    result = process_batch(messages(newer, older), env.services())
    assert result.failed == []
    # Then only the newer is registered and announced, with its own file and rows
    (refreshed,) = env.published("DatasetRefreshed")
    assert refreshed["row_count"] == CUSTOMERS.num_rows
    assert refreshed["source_files"] == [f"s3://lakegov-raw/{key}"]
    statuses = [
        env.audit.get("catalog", f"s3://lakegov-raw/{key}", v)["status"] for v in ("v1", "v2")
    ]
    assert statuses == ["SUPERSEDED", "PROCESSED"]


def test_an_audit_failure_over_a_gone_output_retries_that_message_alone(env, monkeypatch):
    from lakegov.catalog import service
    from lakegov.errors import RetryableError

    # Given a table's good file and another table's file whose output is gone, and an
    # audit table that fails the gone file's verdict once
    good = file_converted("kept", CUSTOMERS, s3=env.s3)
    lost = file_converted("lost", CUSTOMERS, s3=env.s3, source_key="landing/lost/l.csv")
    env.s3.delete_object(Bucket=FORMATTED, Key=lost["output_keys"][0])
    verdict = service._output_gone

    def failing(gone, svc):
        raise RetryableError("audit table throttled")

    monkeypatch.setattr(service, "_output_gone", failing)
    batch = messages(good, lost)
    result = process_batch(batch, env.services())
    # Then the good file is registered and announced; the gone one's message alone retries
    assert result.failed == [batch[1].message_id]
    assert [e["table"] for e in env.published("DatasetRefreshed")] == ["kept"]
    monkeypatch.setattr(service, "_output_gone", verdict)
    assert process_batch(messages(lost), env.services()).failed == []
    item = env.audit.get("catalog", "s3://lakegov-raw/landing/lost/l.csv", "v1")
    assert item["status"] == "REJECTED"
