"""Batched deletes: DeleteObjects' 1,000-key limit, and its per-key errors not swallowed."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from lakegov import s3 as lakegov_s3
from lakegov.errors import RetryableError


class Counting:
    """An S3 client that counts DeleteObjects calls and refuses more than 1,000 keys, as S3
    does (moto does not)."""

    def __init__(self, s3, errors=()):
        self.s3 = s3
        self.sizes = []
        self.errors = list(errors)

    def delete_objects(self, Bucket, Delete):
        assert len(Delete["Objects"]) <= 1000, "MalformedXML: more than 1,000 keys"
        self.sizes.append(len(Delete["Objects"]))
        reply = self.s3.delete_objects(Bucket=Bucket, Delete=Delete)
        if self.errors:
            reply["Errors"] = self.errors
        return reply


def test_keys_are_deleted_in_batches_of_at_most_1000():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="deletes")
        keys = [f"k/{i}" for i in range(2345)]
        for key in keys:
            s3.put_object(Bucket="deletes", Key=key, Body=b"x")
        client = Counting(s3)
        lakegov_s3.delete_keys(client, "deletes", [*keys, ""])
        assert client.sizes == [1000, 1000, 345]
        assert s3.list_objects_v2(Bucket="deletes").get("KeyCount") == 0
        lakegov_s3.delete_keys(client, "deletes", [])
        assert client.sizes == [1000, 1000, 345]


def test_a_key_s3_did_not_delete_fails_the_call():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="deletes")
        s3.put_object(Bucket="deletes", Key="k", Body=b"x")
        denied = [{"Key": "k", "Code": "AccessDenied", "Message": "Access Denied"}]
        with pytest.raises(RetryableError, match=r"1 of 1 objects .* k: AccessDenied"):
            lakegov_s3.delete_keys(Counting(s3, denied), "deletes", ["k"])
