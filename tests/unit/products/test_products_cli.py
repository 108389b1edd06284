"""``lakegov products publish-dbt --outputs``: the deployment read as every CLI reads it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lakegov.errors import ConfigurationError
from lakegov.products.cli import _bucket_and_endpoint


def _args(outputs: Path, **given: str) -> argparse.Namespace:
    return argparse.Namespace(
        outputs=str(outputs),
        bucket=given.get("bucket"),
        endpoint_url=given.get("endpoint_url"),
        region=given.get("region"),
    )


def test_the_outputs_file_gives_bucket_endpoint_and_region_and_flags_win(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "ConfigBucketName": "cfg",
                "EndpointUrl": "http://127.0.0.1:4566",
                "Region": "eu-west-1",
            }
        )
    )
    assert _bucket_and_endpoint(_args(outputs)) == ("cfg", "http://127.0.0.1:4566", "eu-west-1")
    assert _bucket_and_endpoint(_args(outputs, bucket="other", region="us-east-1")) == (
        "other",
        "http://127.0.0.1:4566",
        "us-east-1",
    )


def test_an_outputs_file_without_the_config_bucket_is_refused_by_name(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"Region": "eu-west-1"}))
    with pytest.raises(ConfigurationError, match="ConfigBucketName"):
        _bucket_and_endpoint(_args(outputs))
