"""Copies over CopyObject's 5 GiB limit: multipart (UploadPartCopy), in one helper.

The limit is lowered (the strict layer's and the helper's alike) so a few MiB stand for
5 GiB; the code path is the one a 6 GiB file takes on AWS.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

import lakegov.app
from lakegov import s3 as lakegov_s3

MiB = 1024**2


@pytest.fixture
def lowered_copy_limit(monkeypatch, strict_aws_limits):
    strict_aws_limits.copy_object_bytes = 6 * MiB
    monkeypatch.setattr(lakegov_s3, "COPY_OBJECT_LIMIT", 6 * MiB)


def test_part_ranges_cover_the_object_within_s3s_part_limits():
    ranges = lakegov_s3.part_ranges(50 * 1024**4 // 1024 * 1000)  # ~48.8 TiB
    assert len(ranges) <= lakegov_s3.MAX_PARTS
    assert ranges[0][0] == 0 and ranges[-1][1] == 50 * 1024**4 // 1024 * 1000 - 1
    assert all(b - a + 1 <= lakegov_s3.MAX_PART_BYTES for a, b in ranges)
    assert all(ranges[i][1] + 1 == ranges[i + 1][0] for i in range(len(ranges) - 1))


def test_an_object_over_the_copy_limit_is_copied_in_parts(lowered_copy_limit):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="copies")
        body = bytes(range(256)) * (11 * MiB // 256)
        s3.put_object(Bucket="copies", Key="big.csv", Body=body, Metadata={"a": "1"})
        lakegov_s3.copy_object(
            s3,
            source={"Bucket": "copies", "Key": "big.csv"},
            bucket="copies",
            key="quarantine/big.csv",
            metadata={"lakegov-reason-code": "too_large"},
            part_bytes=5 * MiB,
        )
        copied = s3.get_object(Bucket="copies", Key="quarantine/big.csv")
        assert copied["Body"].read() == body
        assert copied["Metadata"] == {"lakegov-reason-code": "too_large"}
        assert copied["ETag"].strip('"').endswith("-3")  # three parts
        lakegov_s3.copy_object(
            s3, source={"Bucket": "copies", "Key": "big.csv"}, bucket="copies", key="kept.csv"
        )
        assert s3.head_object(Bucket="copies", Key="kept.csv")["Metadata"] == {"a": "1"}


def test_a_too_large_landed_file_is_quarantined_not_dead_lettered(
    lowered_copy_limit, monkeypatch, lambda_context
):
    from tests.integration.ingest.test_convert_handler import ENV, Harness

    for key, value in {**ENV, "MAX_FILE_BYTES": str(MiB)}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        import handlers.convert as convert_handler

        lakegov.app._apps.clear()  # a cold container: the App and its converter built anew
        h = Harness()
        big = h.land("sales/emea/order_dt=2026-11-20/huge.csv", b"id\n" + b"1\n" * (4 * MiB))
        response = convert_handler.handler(h.batch(big), lambda_context)
        assert response["batchItemFailures"] == []
        (rejected,) = [e["detail"] for e in h.published() if e["detail-type"] == "FileRejected"]
        assert rejected["reason_code"] == "too_large"
        head = h.s3.head_object(Bucket="raw", Key=rejected["quarantine_key"])
        assert head["ContentLength"] == 3 + 8 * MiB
        assert head["Metadata"]["lakegov-reason-code"] == "too_large"


class _OverwrittenMidCopy:
    """moto's S3, but the source is overwritten after the first part is copied, and
    ``UploadPartCopy`` honours ``CopySourceIfMatch`` as S3 does (moto ignores it)."""

    def __init__(self, s3, body):
        self._s3 = s3
        self._body = body
        self.parts = 0

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def upload_part_copy(self, **kwargs):
        from botocore.exceptions import ClientError

        source = kwargs["CopySource"]
        current = self._s3.head_object(Bucket=source["Bucket"], Key=source["Key"])["ETag"]
        if "CopySourceIfMatch" in kwargs and kwargs["CopySourceIfMatch"] != current:
            raise ClientError(
                {
                    "Error": {
                        "Code": "PreconditionFailed",
                        "Message": "At least one of the pre-conditions you specified did not hold",
                    }
                },
                "UploadPartCopy",
            )
        response = self._s3.upload_part_copy(**kwargs)
        self.parts += 1
        if self.parts == 1:
            self._s3.put_object(Bucket=source["Bucket"], Key=source["Key"], Body=self._body)
        return response


def test_a_source_overwritten_during_a_multipart_copy_fails_the_copy(lowered_copy_limit):
    """Parts of two different objects are never stitched into one copy."""
    from botocore.exceptions import ClientError

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="copies")
        s3.put_object(Bucket="copies", Key="big.csv", Body=b"a" * (11 * MiB))
        racing = _OverwrittenMidCopy(s3, b"b" * (11 * MiB))
        with pytest.raises(ClientError, match="PreconditionFailed"):
            lakegov_s3.copy_object(
                racing,
                source={"Bucket": "copies", "Key": "big.csv"},
                bucket="copies",
                key="copy.csv",
                size=11 * MiB,
                part_bytes=5 * MiB,
            )
        assert "Contents" not in s3.list_objects_v2(Bucket="copies", Prefix="copy.csv")
        assert s3.list_multipart_uploads(Bucket="copies").get("Uploads", []) == []


def test_a_small_file_is_one_put_and_a_large_one_a_multipart_upload(tmp_path, monkeypatch):
    monkeypatch.setattr(lakegov_s3, "MULTIPART_THRESHOLD", 5 * MiB)
    small, large = tmp_path / "small.parquet", tmp_path / "large.parquet"
    small.write_bytes(b"PAR1" * 1000)
    large.write_bytes(bytes(range(256)) * (9 * MiB // 256))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="uploads")
        calls: list[str] = []
        s3.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
        lakegov_s3.upload_file(s3, small, "uploads", "small.parquet")
        assert calls == ["PutObject"]
        calls.clear()
        lakegov_s3.upload_file(s3, str(large), "uploads", "large.parquet")
        assert calls[0] == "CreateMultipartUpload" and "CompleteMultipartUpload" in calls
        for path, key in ((small, "small.parquet"), (large, "large.parquet")):
            body = s3.get_object(Bucket="uploads", Key=key)["Body"].read()
            assert body == path.read_bytes()
