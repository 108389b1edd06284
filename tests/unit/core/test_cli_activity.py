"""What `lakegov local run` prints for each invocation and event: whole lines, named."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from lakegov.cli import _print_activity


def test_each_event_names_what_it_is_about(capsys):
    for detail_type, detail in (
        ("FileConverted", {"key": "sales/2026/orders.csv"}),
        ("GovernanceApplied", {"document": {"key": "governance/analysts.json"}}),
        ("LineageRecorded", {"job": "convert.sales_orders", "dataset": "stg.sales_orders"}),
    ):
        _print_activity("event", {"detail-type": detail_type, "_bus": "svc", "detail": detail})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines] == [
        "sales/2026/orders.csv",
        "governance/analysts.json",
        "stg.sales_orders",
    ]


def test_lines_from_several_threads_do_not_run_together(capsys):
    done = SimpleNamespace(
        ok=True, error="", failed_items=0, duration_ms=12.0, function="F", source="sqs:S"
    )

    def burst() -> None:
        for _ in range(200):
            _print_activity("invocation", done)

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 800
    assert all(line.startswith("[invoke] F") and line.endswith("ok 12 ms") for line in lines)


def test_a_command_that_counts_often_prints_no_metrics_into_its_output(capsys, monkeypatch):
    """Powertools prints held metrics to stdout every 100 values of one metric; the CLI
    (`lakegov reprocess --json` over a thousand files) must print its JSON alone."""
    import argparse

    from lakegov import cli
    from lakegov.observability import count, metrics

    def busy(args: argparse.Namespace) -> int:
        for _ in range(250):
            count("FilesConverted")
        print('{"converted": 250}')
        return 0

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=busy)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    metrics.clear_metrics()
    assert cli.main([]) == 0
    assert capsys.readouterr().out == '{"converted": 250}\n'
    # outside a command, counts are kept (and a hundred of them printed, as in Lambda)
    for _ in range(100):
        count("FilesConverted")
    assert '"FilesConverted"' in capsys.readouterr().out
    metrics.clear_metrics()
