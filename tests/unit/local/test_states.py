"""The embedded runtime's state machine interpreter, on the template's own definition."""

import datetime
import functools
import threading

import pytest
import yaml
from tests.conftest import ROOT

from lakegov.local.states_language import Interpreter, StatesError, parameters, read_path


class Listing:
    def __init__(self, keys):
        self.keys = keys

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix):
        moment = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)
        contents = [
            {"Key": k, "ETag": '"e"', "Size": 1, "LastModified": moment}
            for k in self.keys
            if k.startswith(Prefix)
        ]
        yield {"Contents": contents[:1000]}
        if len(contents) > 1000:
            yield {"Contents": contents[1000:]}


class Queue:
    def __init__(self):
        self.sent = []

    def send_message(self, QueueUrl, MessageBody):
        self.sent.append((QueueUrl, MessageBody))


@functools.cache
def rerun_definition():
    """RerunStateMachine's definition from template.yaml, substitutions filled in."""

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader, suffix, node):
        return None

    Loader.add_multi_constructor("!", tag)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    props = template["Resources"]["RerunStateMachine"]["Properties"]
    text = yaml.safe_dump(props["Definition"])
    for name in props["DefinitionSubstitutions"]:
        text = text.replace("${" + name + "}", f"arn:fn:{name}")
    return yaml.safe_load(text)


def run(keys, *, fail=lambda payload: False, target="landed"):
    calls = []
    lock = threading.Lock()

    def invoke(arn, payload):
        with lock:
            calls.append((arn, payload))
        if fail(payload):
            raise StatesError("RetryableError", "boom")
        return {"ok": True}

    queue = Queue()
    interpreter = Interpreter(
        rerun_definition(), invoke=invoke, s3=lambda: Listing(keys), sqs=lambda: queue
    )
    data = {
        "run_id": "r1",
        "bucket": "raw",
        "prefix": "p/",
        "target": target,
        "force": False,
        "since": "",
    }
    return interpreter, interpreter.run, data, calls, queue


def test_the_map_batches_the_listing_into_the_convert_function_then_compacts():
    keys = [f"p/k{i}.csv" for i in range(1203)] + ["other/x.csv"]
    _, execute, data, calls, queue = run(keys)
    output = execute(data)
    assert output == data  # ResultPath null: the input goes on
    batches = [p for arn, p in calls if arn == "arn:fn:ConvertFunctionArn"]
    assert sorted(len(b["Items"]) for b in batches) == sorted([25] * 48 + [3])
    assert {i["Key"] for b in batches for i in b["Items"]} == set(keys[:-1])
    assert all(
        b["BatchInput"] == {k: data[k] for k in ("run_id", "bucket", "target", "force", "since")}
        for b in batches
    )
    assert calls[-1] == ("arn:fn:CompactFunctionArn", {"source": "reprocess", "run_id": "r1"})
    assert queue.sent == []


def test_metadata_runs_go_to_the_config_function_and_do_not_compact():
    _, execute, data, calls, _ = run([f"p/d{i}.json" for i in range(15)], target="metadata")
    execute(data)
    assert [len(p["Items"]) for arn, p in calls if arn == "arn:fn:ConfigFunctionArn"] in (
        [10, 5],
        [5, 10],
    )
    assert not [c for c in calls if c[0] != "arn:fn:ConfigFunctionArn"]


def test_failures_within_the_tolerated_percentage_pass_and_beyond_it_fail_the_run():
    keys = [f"p/k{i}.csv" for i in range(1000)]
    # one batch of 25 out of 1,000 items fails every attempt: 2.5% <= 5%
    _, execute, data, calls, queue = run(
        keys, fail=lambda p: p.get("Items", [{}])[0].get("Key") == "p/k0.csv"
    )
    execute(data)
    assert queue.sent == []
    attempts = [p for _, p in calls if p.get("Items", [{}])[0].get("Key") == "p/k0.csv"]
    assert len(attempts) == 4  # the first try and the template's three retries
    # three failing batches: 7.5% > 5%: the input goes to the dead-letter queue, the run fails
    bad = {"p/k0.csv", "p/k25.csv", "p/k50.csv"}
    _, execute, data, _, queue = run(keys, fail=lambda p: p.get("Items", [{}])[0].get("Key") in bad)
    with pytest.raises(StatesError) as failed:
        execute(data)
    assert failed.value.error == "States.ExceedToleratedFailureThreshold"
    assert "75 of 1000 items failed" in failed.value.cause
    assert len(queue.sent) == 1 and '"run_id": "r1"' in queue.sent[0][1]


def test_paths_and_parameters():
    data = {"a": {"b": 1}, "c": "x"}
    assert read_path(data, "$") is data
    assert read_path(data, "$.a.b") == 1
    assert parameters({"v.$": "$.a.b", "k": "lit", "n": {"c.$": "$.c"}}, data) == {
        "v": 1,
        "k": "lit",
        "n": {"c": "x"},
    }
    with pytest.raises(StatesError, match="does not support"):
        read_path(data, "$['a']")
    with pytest.raises(StatesError, match="matches nothing"):
        read_path(data, "$.missing")


def test_an_unsupported_state_fails_clearly():
    interpreter = Interpreter(
        {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}},
        invoke=lambda *a: None,
        s3=lambda: None,
        sqs=lambda: None,
    )
    with pytest.raises(StatesError, match="does not support Wait states"):
        interpreter.run({})


class Machines:
    """Stands in for LocalStateMachines: one state machine, its executions answered."""

    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:rerun"

    def handles(self, body):
        return body.get("stateMachineArn") == self.arn or "executionArn" in body

    def start_execution(self, body):
        return {"executionArn": self.arn.replace("stateMachine", "execution") + ":x"}

    def describe_execution(self, body):
        raise StatesError("ExecutionDoesNotExist", body["executionArn"])

    def stop_execution(self, body):  # pragma: no cover - not called here
        raise AssertionError


def test_the_endpoint_forwards_the_template_s_executions_to_the_runtime_and_the_rest_to_moto():
    import io
    import json

    from lakegov.local.states import StatesForwarder, StatesListener

    moto_calls = []

    def moto(environ, start_response):
        moto_calls.append((environ["HTTP_X_AMZ_TARGET"], environ["wsgi.input"].read()))
        start_response("200 OK", [("Content-Length", "2")])
        return [b"{}"]

    def call(app, action, body):
        raw = json.dumps(body).encode()
        environ = {
            "HTTP_X_AMZ_TARGET": f"AWSStepFunctions.{action}",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
        }
        status = []
        data = b"".join(app(environ, lambda s, headers: status.append(s)))
        return status[0], json.loads(data)

    listener = StatesListener(Machines()).start()
    try:
        app = StatesForwarder(moto, listener.url)
        # the template's state machine: answered by the runtime, moto never sees it
        status, reply = call(app, "StartExecution", {"stateMachineArn": Machines.arn})
        assert status == "200 OK"
        assert reply["executionArn"].endswith(":execution:rerun:x")
        # the runtime's refusal reaches the caller as Step Functions' error
        status, reply = call(app, "DescribeExecution", {"executionArn": "nope"})
        assert status == "400 Bad Request"
        assert reply == {"__type": "ExecutionDoesNotExist", "message": "nope"}
        assert moto_calls == []
        # another state machine, and other actions: moto, with the body intact
        other = {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:other"}
        assert call(app, "StartExecution", other) == ("200 OK", {})
        assert call(app, "ListStateMachines", {}) == ("200 OK", {})
        assert moto_calls == [
            ("AWSStepFunctions.StartExecution", json.dumps(other).encode()),
            ("AWSStepFunctions.ListStateMachines", b"{}"),
        ]
    finally:
        listener.stop()


def _one_state(state, data=None):
    interpreter = Interpreter(
        {"StartAt": "S", "States": {"S": state}},
        invoke=lambda arn, payload: {"big": "x" * 300_000} if payload == "big" else payload,
        s3=lambda: Listing([f"p/k{i}" for i in range(30)]),
        sqs=lambda: None,
    )
    return interpreter.run({} if data is None else data)


@pytest.mark.parametrize(
    ("state", "named"),
    [
        ({"Type": "Pass", "InputPath": "$.a", "End": True}, "InputPath"),
        ({"Type": "Pass", "Parameters": {"a": 1}, "End": True}, "Parameters"),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f"},
                "ResultSelector": {"a.$": "$.Payload"},
                "End": True,
            },
            "ResultSelector",
        ),
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "f"},
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxDelaySeconds": 5}],
                "End": True,
            },
            "Retry.MaxDelaySeconds",
        ),
        (
            {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:listObjectsV2",
                    "Parameters": {"Bucket": "raw"},
                },
                "ItemBatcher": {"MaxItemsPerBatch": 5, "MaxInputBytesPerBatch": 1024},
                "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED"}},
                "End": True,
            },
            "ItemBatcher.MaxInputBytesPerBatch",
        ),
    ],
)
def test_a_field_the_interpreter_does_not_honour_fails_clearly(state, named):
    with pytest.raises(StatesError, match=f"does not support the field.*{named}"):
        _one_state(state)


def _map(**fields):
    state = {
        "Type": "Map",
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:listObjectsV2",
            "Parameters": {"Bucket": "raw", "Prefix": "p/"},
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED"},
            "StartAt": "Done",
            "States": {"Done": {"Type": "Succeed"}},
        },
        "ResultPath": None,
        "End": True,
    }
    return state | fields


@pytest.mark.parametrize(
    "fields",
    [
        {"ToleratedFailurePercentage": 101},
        {"ToleratedFailurePercentage": -1},
        {"ItemBatcher": {"MaxItemsPerBatch": 0}},
    ],
)
def test_map_settings_outside_step_functions_ranges_fail(fields):
    with pytest.raises(StatesError, match="MaxItemsPerBatch must be"):
        _one_state(_map(**fields))


def test_payloads_over_256_kib_fail_as_on_step_functions():
    assert _one_state(_map(ItemBatcher={"MaxItemsPerBatch": 5})) == {}
    big = {"MaxItemsPerBatch": 5, "BatchInput": {"pad": "x" * 270_000}}
    with pytest.raises(StatesError, match="a batch's input is larger") as batch:
        _one_state(_map(ItemBatcher=big))
    assert batch.value.error == "States.DataLimitExceeded"
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload": "big"},
        "End": True,
    }
    with pytest.raises(StatesError, match="output of the state S") as output:
        _one_state(task)
    assert output.value.error == "States.DataLimitExceeded"


@pytest.mark.parametrize("name", ["x" * 81, "has space", "a/b", ""])
def test_execution_names_step_functions_refuses_are_refused(name):
    from lakegov.local.states_language import check_execution_name

    with pytest.raises(StatesError) as refused:
        check_execution_name(name)
    assert refused.value.error == "InvalidName"
    check_execution_name("reprocess-20261130T234500Z-0123abcd")


def test_output_path_applies_after_result_path_and_null_drops_everything():
    task = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "f", "Payload": {"n": 1}},
        "ResultPath": "$.call",
        "OutputPath": "$.call.Payload",
        "End": True,
    }
    assert _one_state(task, {"keep": True}) == {"n": 1}
    assert _one_state({**task, "OutputPath": "$.keep"}, {"keep": True}) is True
    assert _one_state({**task, "OutputPath": None}, {"keep": True}) == {}


def test_the_template_s_map_children_return_nothing_to_aggregate():
    # the map's result array is capped at 256 KiB on AWS: each child gives {} back
    _, execute, data, _, _ = run([f"p/k{i}.csv" for i in range(60)])
    processor = rerun_definition()["States"]["ReprocessObjects"]["ItemProcessor"]
    interpreter = Interpreter(
        processor, invoke=lambda arn, p: {"converted": 25}, s3=lambda: None, sqs=lambda: None
    )
    assert interpreter.run({"Items": [], "BatchInput": {}}) == {}
    assert execute(data) == data
