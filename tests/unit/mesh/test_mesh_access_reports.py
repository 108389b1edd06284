"""The central account audits each domain's AccessLinked report under the account that
sent it, and refuses a report naming another consumer account."""

from lakegov.mesh.sharing import record_access_report

REPORT = {
    "consumer_account": "444400000001",
    "producer_account": "123456789012",
    "action": "linked",
    "status": "DONE",
    "document": {"bucket": "cfg", "key": "subscriptions/marketing.json"},
    "links": [{"database": "shared_db", "table": "orders", "change": "created"}],
}


class RecordingAudit:
    def __init__(self):
        self.items = []

    def record(self, kind, subject, version, status, **extra):
        self.items.append((kind, subject, version, status))


def test_a_report_is_audited_under_its_sending_consumer_account():
    audit = RecordingAudit()
    outcome = record_access_report(audit, REPORT, "e-1", "444400000001")
    assert outcome == {
        "subject": "444400000001/subscriptions/marketing.json",
        "status": "LINKED_DONE",
    }
    assert audit.items == [
        ("access", "444400000001/subscriptions/marketing.json", "e-1#linked", "LINKED_DONE")
    ]


def test_a_report_naming_another_account_than_its_sender_is_refused_unrecorded():
    audit = RecordingAudit()
    outcome = record_access_report(audit, REPORT, "e-2", "555500000002")
    assert outcome["status"] == "REFUSED_SENDER"
    assert audit.items == []
