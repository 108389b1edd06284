"""The embedded runtime's inbox bookkeeping: delivered events are deleted ten per call, and
no receipt waits past a bound."""

import logging
import threading

from lakegov.local.inbox import Inbox, delete_received

URL = "http://127.0.0.1:1/123456789012/fn-Events-in"


class Queue:
    """Records DeleteMessageBatch calls; refuses the receipts listed in ``refuse``."""

    def __init__(self, refuse=()):
        self.batches = []
        self.refuse = set(refuse)
        self.deleted = threading.Event()

    def delete_message_batch(self, QueueUrl, Entries):
        assert QueueUrl == URL
        assert 1 <= len(Entries) <= 10  # SQS's limit per call
        self.batches.append([e["ReceiptHandle"] for e in Entries])
        self.deleted.set()
        failed = [
            {"Id": e["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}
            for e in Entries
            if e["ReceiptHandle"] in self.refuse
        ]
        return {"Successful": [], "Failed": failed}


def test_delivered_events_are_deleted_ten_per_call():
    sqs = Queue()
    inbox = Inbox(sqs, URL, wait=60)
    for n in range(12):
        inbox.delivered(f"r{n}")
    assert sqs.batches == [[f"r{n}" for n in range(10)]]
    inbox.flush()  # (wait_idle, once nothing runs; stop)
    assert sqs.batches == [[f"r{n}" for n in range(10)], ["r10", "r11"]]
    inbox.flush()
    assert len(sqs.batches) == 2  # nothing left: no call


def test_a_receipt_waits_no_longer_than_the_bound():
    sqs = Queue()
    inbox = Inbox(sqs, URL, wait=0.2)
    inbox.delivered("first")
    inbox.delivered("second")
    assert sqs.batches == []  # gathering
    assert sqs.deleted.wait(10), "the waiting receipts were never deleted"
    assert sqs.batches == [["first", "second"]]
    sqs.deleted.clear()
    inbox.delivered("third")  # a new wait starts with the next receipt
    assert sqs.deleted.wait(10)
    assert sqs.batches == [["first", "second"], ["third"]]


def test_deleting_splits_into_calls_of_ten_and_reports_what_sqs_refused(caplog):
    caplog.set_level(logging.WARNING, logger="lakegov")  # whatever level an earlier test left
    sqs = Queue(refuse={"r3"})
    delete_received(sqs, URL, [f"r{n}" for n in range(23)])
    assert [len(b) for b in sqs.batches] == [10, 10, 3]
    assert "message not deleted" in caplog.text


def test_nothing_to_delete_makes_no_call():
    sqs = Queue()
    delete_received(sqs, URL, [])
    Inbox(sqs, URL).flush()
    assert sqs.batches == []
