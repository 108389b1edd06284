"""`lakegov demo` runs the whole chain and says so with its exit code."""

import pytest
from tests.conftest import ROOT

from lakegov.local.demo import run_demo

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("runtime")]


def test_the_demo_walks_the_whole_chain(capsys):
    code = run_demo(ROOT / "template.yaml")
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    for expected in (
        "GovernanceApplied:",
        "GovernanceRejected $[0].access_type",
        "FileConverted: table mwaa_blog_customers",
        "FileRejected: ragged_rows",
        "ProductRunFinished: SUCCEEDED",
        "email_format|not_null_dob",
        "referential_cust_id",
        "finance: 0 DatasetRefreshed: nothing",
        # the post's ending: Athena SQL on the formatted table, 30 card rows
        "SELECT * FROM lakegov_dev_formatted.mwaa_blog_cards",
        "Total 30 rows",
        "SUCCEEDED: 30 cards",
        # the run audit in the lake, as the original audit_control
        "FROM lakegov_dev_formatted.audit_control",
        "FAILED: AccessDeniedException",
    ):
        assert expected in out, expected
