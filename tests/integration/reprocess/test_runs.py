"""A rerun batch on moto: each object version once per run, whatever the retries."""

import boto3
import pytest
from moto import mock_aws
from tests.conftest import create_audit_table

from lakegov.audit import AuditStore
from lakegov.errors import RetryableError
from lakegov.reprocess.runs import RunInput, run_batch, run_totals


@pytest.fixture
def aws():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="raw")
        s3.put_bucket_versioning(Bucket="raw", VersioningConfiguration={"Status": "Enabled"})
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_audit_table(ddb)
        yield s3, AuditStore("audit", ddb)


class Upload:
    """Stands for the upload path: claims the version as the converter does."""

    def __init__(self, audit, fail=()):
        self.audit = audit
        self.fail = set(fail)
        self.done = []

    def __call__(self, stored):
        if stored.key in self.fail:
            raise RetryableError("transient")
        claim = self.audit.claim("file", stored.subject, stored.version)
        if claim.duplicate:
            return "DUPLICATE"
        self.audit.record("file", stored.subject, stored.version, "PROCESSED")
        self.done.append(stored.key)
        return "PROCESSED"


def items(s3, n):
    for i in range(n):
        s3.put_object(Bucket="raw", Key=f"p/f{i}.csv", Body=b"a\n1\n")
    return [{"Key": f"p/f{i}.csv"} for i in range(n)]


def test_a_retried_batch_does_and_counts_each_object_once(aws):
    s3, audit = aws
    batch = items(s3, 5)
    run = RunInput("run-1", "raw", "landed")
    upload = Upload(audit, fail={"p/f3.csv"})
    with pytest.raises(RetryableError, match="1 of 5"):
        run_batch(batch, run, s3=s3, audit=audit, kind="file", process=upload)
    upload.fail.clear()
    run_batch(batch, run, s3=s3, audit=audit, kind="file", process=upload)
    assert sorted(upload.done) == [f"p/f{i}.csv" for i in range(5)]
    # the failed attempt is not counted: what the retry did is
    assert run_totals(audit, "run-1") == {"converted": 5, "skipped": 0, "rejected": 0, "failed": 0}


def test_force_reopens_each_version_once_per_run_and_a_plain_run_skips(aws):
    s3, audit = aws
    batch = items(s3, 3)
    upload = Upload(audit)
    run_batch(
        batch, RunInput("first", "raw", "landed"), s3=s3, audit=audit, kind="file", process=upload
    )
    forced = RunInput("forced", "raw", "landed", force=True)
    run_batch(batch, forced, s3=s3, audit=audit, kind="file", process=upload)
    run_batch(batch, forced, s3=s3, audit=audit, kind="file", process=upload)  # a retry
    plain = RunInput("plain", "raw", "landed")
    run_batch(batch, plain, s3=s3, audit=audit, kind="file", process=upload)
    assert len(upload.done) == 6  # converted by "first" and once more by "forced"
    assert run_totals(audit, "forced")["converted"] == 3
    assert run_totals(audit, "plain") == {"converted": 0, "skipped": 3, "rejected": 0, "failed": 0}


def test_since_skips_older_objects_and_a_deleted_one_is_skipped(aws):
    s3, audit = aws
    batch = items(s3, 2)
    s3.delete_object(Bucket="raw", Key="p/f1.csv")
    upload = Upload(audit)
    run_batch(
        batch,
        RunInput("r", "raw", "landed", since="2999-01-01"),
        s3=s3,
        audit=audit,
        kind="file",
        process=upload,
    )
    run_batch(
        batch, RunInput("s", "raw", "landed"), s3=s3, audit=audit, kind="file", process=upload
    )
    assert upload.done == ["p/f0.csv"]
    assert run_totals(audit, "r")["skipped"] == 2
    assert run_totals(audit, "s") == {"converted": 1, "skipped": 1, "rejected": 0, "failed": 0}


def test_a_batch_running_out_of_time_leaves_the_rest_to_the_retry(aws):
    s3, audit = aws
    batch = items(s3, 4)
    upload = Upload(audit)
    left = iter([600_000, 600_000, 1_000])  # the third item would not fit
    run = RunInput("t", "raw", "landed")
    with pytest.raises(RetryableError, match="2 of 4"):
        run_batch(
            batch,
            run,
            s3=s3,
            audit=audit,
            kind="file",
            process=upload,
            remaining_ms=lambda: next(left),
        )
    assert upload.done == ["p/f0.csv", "p/f1.csv"]
    run_batch(batch, run, s3=s3, audit=audit, kind="file", process=upload)
    assert len(upload.done) == 4
    assert run_totals(audit, "t")["converted"] == 4
