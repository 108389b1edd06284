"""FileConverted -> what the catalog needs; partition projection parameters (no AWS)."""

from __future__ import annotations

import pytest

from lakegov.catalog.converted import ConvertedFile
from lakegov.catalog.crawler import crawler_definition
from lakegov.catalog.glue import Table, projection_parameters, widen_projection_range
from lakegov.errors import PermanentError
from lakegov.layout import Partition, parse_key, split_key
from lakegov.settings import Settings

SETTINGS = Settings(
    "dev", "us-east-1", "raw", "fmt", "cfg", "bus", "audit", glue_database_prefix="lakegov_dev_"
)


def test_a_key_splits_into_table_folder_and_ordered_partition():
    prefix, table, part = split_key("formatted_stg/t/year=2026/month=11/a%20b.parquet")
    assert (prefix, table) == ("formatted_stg/t/", "t")
    assert (
        part.items == (("year", "2026"), ("month", "11")) and part.folder == "year=2026/month=11/"
    )


def test_a_minimal_event_gets_the_defaults():
    f = ConvertedFile.from_detail(
        {
            "bucket": "raw",
            "key": "a/b.csv",
            "etag": "e1",
            "table": "t",
            "output_bucket": "fmt",
            "output_keys": ["formatted_stg/t/d=1/x.parquet", "formatted_stg/t/d=2/y.parquet"],
        },
        SETTINGS,
    )
    assert f.mode == "direct"  # the service default when the dataset does not choose
    assert f.database == "lakegov_dev_formatted_stg" and f.dataset == "t"
    assert f.location == "s3://fmt/formatted_stg/t/"
    assert [p.values for p in f.partitions] == [["1"], ["2"]]
    assert (f.source, f.source_version) == ("s3://raw/a/b.csv", "e1")


@pytest.mark.parametrize(
    "keys",
    [
        ["formatted_stg/t/d=1/x.parquet", "formatted_stg/t/x.parquet"],
        ["formatted_stg/t/d=1/x.parquet", "formatted_stg/u/d=1/x.parquet"],
        ["x.parquet"],
    ],
)
def test_inconsistent_output_keys_are_refused(keys):
    with pytest.raises(PermanentError):
        ConvertedFile.from_detail({"table": "t", "output_keys": keys}, SETTINGS)


def test_date_partitions_project_from_the_earliest_value_to_now():
    params = projection_parameters(
        ["dt"], [["2026-11-20"], ["2026-10-01"], ["2026-12-31"]], "s3://b/formatted_stg/t/"
    )
    assert params == {
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2026-10-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": "s3://b/formatted_stg/t/dt=${dt}/",
    }


def test_calendar_keys_project_as_dates_and_bounded_integers():
    params = projection_parameters(
        ["year", "month", "hourly"], [["2025", "01", "2026-01-01-07"]], "s3://b/t"
    )
    assert params["projection.year.format"] == "yyyy"
    assert params["projection.month.type"] == "integer"
    assert params["projection.month.range"] == "1,12" and params["projection.month.digits"] == "2"
    assert params["projection.hourly.interval.unit"] == "HOURS"
    assert params["storage.location.template"] == (
        "s3://b/t/year=${year}/month=${month}/hourly=${hourly}/"
    )


@pytest.mark.parametrize("values", [[["acme"]], [["2026-11-20"], ["not-a-date"]], [["2026-02-30"]]])
def test_keys_that_are_not_dates_are_not_projected(values):
    assert projection_parameters(["k"], values, "s3://b/t/") is None


def test_an_older_partition_widens_the_projected_range():
    table = Table(
        "db",
        "t",
        {"Parameters": {"projection.dt.type": "date", "projection.dt.range": "2026-11-01,NOW"}},
    )
    older = Partition((("dt", "2026-10-15"),))
    newer = Partition((("dt", "2026-11-15"),))
    assert widen_projection_range(table, [newer]) == {}
    assert widen_projection_range(table, [older, newer]) == {
        "projection.dt.range": "2026-10-15,NOW"
    }


def test_an_on_demand_crawler_targets_one_dataset_folder():
    definition = crawler_definition(
        "lakegov_dev_t",
        role="arn:role",
        database="db",
        target="s3://b/formatted_stg/t/",
        dataset="t",
        table="t",
    )
    assert definition["RecrawlPolicy"] == {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"}
    assert definition["SchemaChangePolicy"] == {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"}
    assert '"TableLevelConfiguration": 3' in definition["Configuration"]
    assert definition["Targets"]["S3Targets"][0]["Path"] == "s3://b/formatted_stg/t/"


# -- partition folders as the converter writes them (values percent-encoded) -----------
CONVERTER_CASES = [
    ("qa/colon/hour=2026-11-21T10:00/simple.csv", "hour", "2026-11-21T10:00"),
    ("qa/space/dt=2026 11 21/simple.csv", "dt", "2026 11 21"),
    ("qa/idf/region=Île-de-France/simple.csv", "region", "Île-de-France"),
    ("qa/pct/code=50%off/simple.csv", "code", "50%off"),
]


@pytest.mark.parametrize(("landed", "key", "value"), CONVERTER_CASES)
def test_a_partition_keeps_the_converters_folder_and_the_decoded_value(landed, key, value):
    # Given the Parquet key the converter writes for a landed file whose value needs encoding
    ref = parse_key(landed)
    output_key = ref.output_key()
    # When the catalog reads its FileConverted
    f = ConvertedFile.from_detail(
        {"bucket": "raw", "key": landed, "etag": "e", "output_keys": [output_key]}, SETTINGS
    )
    # Then the partition's value is the decoded one, and its folder is the one holding the file
    (partition,) = f.partitions
    assert partition.items == ((key, value),)
    assert f.table_prefix + partition.folder == ref.output_prefix
    assert output_key.startswith(f.table_prefix + partition.folder)


def test_a_partition_built_from_values_encodes_its_folder_as_the_converter_does():
    partition = Partition((("hour", "2026-11-21T10:00"), ("region", "Île-de-France")))
    assert partition.folder == "hour=2026-11-21T10%3A00/region=%C3%8Ele-de-France/"


@pytest.mark.parametrize(
    "keys", [["formatted_stg/root_file/root_file.parquet"], ["formatted_stg/t/a.parquet"] * 2]
)
def test_an_unpartitioned_file_has_no_partition(keys):
    f = ConvertedFile.from_detail({"output_keys": keys}, SETTINGS)
    assert f.partitions == () and f.partition_keys == ()


def test_values_that_need_encoding_are_never_projected():
    # The template substitutes raw values; the converter's folders hold encoded ones.
    assert projection_parameters(["dt"], [["2026-11-21"], ["2026 11 21"]], "s3://b/t/") is None
    assert projection_parameters(["hour"], [["2026-11-21T10:00"]], "s3://b/t/") is None
