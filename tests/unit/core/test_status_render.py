from lakegov.ops.status import render, render_recent, subject_for


def test_subjects_are_built_from_what_a_person_types():
    assert (
        subject_for("file", "a/b.csv", raw_bucket="raw", config_bucket="cfg") == "s3://raw/a/b.csv"
    )
    assert subject_for("metadata", "governance/x.json", raw_bucket="raw", config_bucket="cfg") == (
        "s3://cfg/governance/x.json"
    )
    assert (
        subject_for("file", "s3://other/k", raw_bucket="raw", config_bucket="cfg") == "s3://other/k"
    )
    assert subject_for("run", "cards", raw_bucket="raw", config_bucket="cfg") == "cards"


def test_a_timeline_shows_every_attempt_and_the_reason():
    items = [
        {
            "status": "REJECTED",
            "version": "v1",
            "attempts": 2,
            "reason_code": "ragged_rows",
            "quarantine_key": "quarantine/a.csv",
            "history": [
                {"status": "RECEIVED", "at": "2026-11-21T10:00:00Z"},
                {"status": "RECEIVED", "at": "2026-11-21T10:00:05Z", "note": "retry"},
                {"status": "REJECTED", "at": "2026-11-21T10:00:06Z", "note": "ragged_rows: line 3"},
            ],
        }
    ]
    text = render("file", "s3://raw/a.csv", items)
    assert "[REJECTED] version v1, 2 attempts" in text
    assert "quarantined at  quarantine/a.csv" in text
    assert text.rstrip().endswith("REJECTED    ragged_rows: line 3")


def test_unknown_subjects_say_so():
    assert "nothing recorded" in render("file", "s3://raw/none", [])
    assert render_recent("run", []) == "no run recorded yet"
