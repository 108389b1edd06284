"""The zero-config landing layout: keys to dataset, table, partitions and output prefix."""

from __future__ import annotations

import pytest

from lakegov.errors import RejectedFile
from lakegov.layout import normalize_identifier, parse_key, split_file_name


def test_issue_example() -> None:
    # Given the issue's example key / When parsed / Then table, partition and prefix follow
    ref = parse_key("mwaa/blog/partition_dt=2026-11-20/customers.json")
    assert ref.dataset_id == "mwaa/blog/customers"
    assert ref.table_name == "mwaa_blog_customers"
    assert ref.partitions == {"partition_dt": "2026-11-20"}
    assert ref.format == "json"
    assert ref.compression is None
    assert ref.output_prefix == "formatted_stg/mwaa_blog_customers/partition_dt=2026-11-20/"
    assert ref.output_key("abc123") == (
        "formatted_stg/mwaa_blog_customers/partition_dt=2026-11-20/customers-abc123.parquet"
    )


def test_multiple_partition_levels_and_compressed_name() -> None:
    ref = parse_key("sales/eu/year=2026/month=11/day=20/orders.csv.gz")
    assert ref.table_name == "sales_eu_orders"
    assert list(ref.partitions.items()) == [("year", "2026"), ("month", "11"), ("day", "20")]
    assert (ref.format, ref.compression) == ("csv", "gzip")
    assert ref.output_prefix == "formatted_stg/sales_eu_orders/year=2026/month=11/day=20/"


@pytest.mark.parametrize(
    ("key", "table", "partitions"),
    [
        ("customers.csv", "customers", {}),
        ("dt=2026-11-20/customers.csv", "customers", {"dt": "2026-11-20"}),
        ("a/b.tsv", "a_b", {}),
    ],
)
def test_root_files_and_files_under_partitions_only(
    key: str, table: str, partitions: dict[str, str]
) -> None:
    ref = parse_key(key)
    assert ref.table_name == table
    assert ref.partitions == partitions


def test_tsv_and_psv_imply_their_delimiter() -> None:
    assert parse_key("x/a.tsv").delimiter == "\t"
    assert parse_key("x/a.psv").delimiter == "|"
    assert parse_key("x/a.csv").delimiter is None


def test_url_encoded_event_keys_are_decoded() -> None:
    # S3 events encode a space as '+' and '=' as %3D
    ref = parse_key("my+data/partition_dt%3D2026-11-20/Customer+List.csv", url_encoded=True)
    assert ref.key == "my data/partition_dt=2026-11-20/Customer List.csv"
    assert ref.table_name == "my_data_customer_list"
    assert ref.partitions == {"partition_dt": "2026-11-20"}


def test_odd_characters_become_valid_glue_names() -> None:
    ref = parse_key("Sales Data/2026 Q1/Café-Orders (v2).CSV")
    assert ref.table_name == "sales_data_2026_q1_cafe_orders_v2"
    assert ref.dataset_id == "Sales Data/2026 Q1/Café-Orders (v2)"
    assert ref.format == "csv"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Customers", "customers"),
        ("2026_sales", "t_2026_sales"),
        ("__a--b__", "a_b"),
        ("Ünïcödé", "unicode"),
        ("!!!", ""),
    ],
)
def test_normalize_identifier(raw: str, expected: str) -> None:
    assert normalize_identifier(raw) == expected


def test_long_names_are_cut_and_stay_distinct() -> None:
    a = normalize_identifier("x" * 300 + "a")
    b = normalize_identifier("x" * 300 + "b")
    assert len(a) == 255 and len(b) == 255 and a != b


@pytest.mark.parametrize(
    "key",
    [
        "mwaa/blog/",  # a folder marker
        "mwaa//blog/customers.csv",  # empty folder
        "mwaa/../customers.csv",
        "mwaa/dt=2026/blog/customers.csv",  # partition before a plain folder
        "mwaa/dt=/customers.csv",  # empty partition value
        "mwaa/dt=1/dt=2/customers.csv",  # repeated partition
        "mwaa/.csv",  # no stem
        "!!!/???.csv",  # nothing usable
    ],
)
def test_keys_that_cannot_be_placed_are_rejected(key: str) -> None:
    with pytest.raises(RejectedFile) as err:
        parse_key(key)
    assert err.value.reason_code == "invalid_key"


def test_archives_are_refused_as_unsupported() -> None:
    with pytest.raises(RejectedFile) as err:
        split_file_name("orders.zip")
    assert err.value.reason_code == "unsupported_format"


def test_table_name_override() -> None:
    ref = parse_key("mwaa/blog/dt=1/customers.csv").with_table_name("blog_customers")
    assert ref.output_prefix == "formatted_stg/blog_customers/dt=1/"
    with pytest.raises(RejectedFile):
        parse_key("a/b.csv").with_table_name("Bad Name")


def test_a_compacted_partitions_generations_live_in_hidden_folders_below_it() -> None:
    from lakegov.layout import (
        generation_folder,
        generation_prefix,
        in_generation,
        key_generation,
        parse_key,
        split_key,
    )

    ref = parse_key("shop/dt=2026-11-01/orders.csv")
    assert ref.output_key("v1") == "formatted_stg/shop_orders/dt=2026-11-01/orders-v1.parquet"
    in_gen = ref.output_key("v1", generation=3)
    assert in_gen == "formatted_stg/shop_orders/dt=2026-11-01/_g000003/orders-v1.parquet"
    assert key_generation(in_gen) == 3 and key_generation(ref.output_key("v1")) == 0
    # a key in a generation belongs to the partition above it
    assert split_key(in_gen) == split_key(ref.output_key("v1"))
    assert split_key(in_gen)[2].path == "dt=2026-11-01/"
    assert generation_folder(0) == "" and generation_folder(12) == "_g000012/"
    partition = "formatted_stg/shop_orders/dt=2026-11-01/"
    assert generation_prefix(partition, 1) == partition + "_g000001/"
    # generation 0 holds the files directly in the folder, not those of later generations
    assert in_generation(partition + "a.parquet", partition, 0)
    assert not in_generation(partition + "_g000001/a.parquet", partition, 0)
    assert in_generation(partition + "_g000001/a.parquet", partition, 1)
    assert not in_generation(partition + "_g000001/a.parquet", partition, 2)
