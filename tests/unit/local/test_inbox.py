"""The embedded runtime's inbox bookkeeping: delivered events are deleted ten per call, a
failed one is never deleted, and no receipt waits past a bound."""

from lakegov.local import runtime
from lakegov.local.runtime import _Inbox, delete_received

URL = "http://127.0.0.1:1/123456789012/fn-Events-in"


class Queue:
    """Records DeleteMessageBatch calls; refuses the receipts listed in ``refuse``."""

    def __init__(self, refuse=()):
        self.batches = []
        self.refuse = set(refuse)

    def delete_message_batch(self, QueueUrl, Entries):
        assert QueueUrl == URL
        assert 1 <= len(Entries) <= 10  # SQS's limit per call
        self.batches.append([e["ReceiptHandle"] for e in Entries])
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}
            for e in Entries
            if e["ReceiptHandle"] in self.refuse
        ]
        return {"Successful": [], "Failed": failed}


def _clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: now[0])
    return now


def test_delivered_events_are_deleted_ten_per_call(monkeypatch):
    _clock(monkeypatch)
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    for n in range(12):
        inbox.delivered(f"r{n}")
    assert sqs.batches == [[f"r{n}" for n in range(10)]]
    inbox.flush()  # (wait_idle, once nothing runs)
    assert sqs.batches == [[f"r{n}" for n in range(10)], ["r10", "r11"]]


def test_a_receipt_waits_no_longer_than_the_bound(monkeypatch):
    now = _clock(monkeypatch)
    sqs = Queue()
    inbox = _Inbox(sqs, URL)
    inbox.delivered("early")
    inbox.flush(older_than=runtime.DELETE_AFTER)  # the poller looks before each receive
    assert sqs.batches == []  # it has not waited long
    now[0] += runtime.DELETE_AFTER
    inbox.flush(older_than=runtime.DELETE_AFTER)
    assert sqs.batches == [["early"]]
    now[0] += 0.1
    inbox.delivered("second")
    now[0] += runtime.DELETE_AFTER / 2
    inbox.delivered("third")  # the oldest waiting has not waited long enough yet
    assert sqs.batches == [["early"]]
    now[0] += runtime.DELETE_AFTER / 2
    inbox.delivered("fourth")  # now it has: it goes with the ones after it
    assert sqs.batches == [["early"], ["second", "third", "fourth"]]


def test_deleting_splits_into_calls_of_ten_and_reports_what_sqs_refused(caplog):
    sqs = Queue(refuse={"r3"})
    delete_received(sqs, URL, [f"r{n}" for n in range(23)])
    assert [len(b) for b in sqs.batches] == [10, 10, 3]
    assert "message not deleted" in caplog.text


def test_nothing_to_delete_makes_no_call():
    sqs = Queue()
    delete_received(sqs, URL, [])
    _Inbox(sqs, URL).flush()
    assert sqs.batches == []
