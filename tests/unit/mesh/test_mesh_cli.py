"""``lakegov mesh rules`` shows what a subscription becomes, and refuses bad documents."""

import argparse
import json

from tests.conftest import ROOT

from lakegov.mesh.cli import register

EXAMPLE = ROOT / "examples" / "subscriptions" / "marketing.json"


def _run(argv):
    parser = argparse.ArgumentParser(prog="lakegov")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_rules_prints_each_rule_with_its_pattern_and_size(capsys):
    assert _run(["mesh", "rules", str(EXAMPLE)]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert [r["wildcard"] for r in report["rules"]] == [False, True]
    first = report["rules"][0]
    assert first["name"].startswith("lakegov-sub-marketing-") and first["pattern_chars"] < 2048
    assert first["pattern"]["detail"]["dataset"] == ["mwaa/blog/customers", {"prefix": "sales/"}]


def test_a_bad_document_exits_non_zero_with_one_line_per_problem(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(EXAMPLE.read_text()), "datasets": ["*"]}))
    assert _run(["mesh", "rules", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "$.datasets[0]" in err[0] and "allow_all_datasets" in err[0]
    missing = tmp_path / "missing.json"
    assert _run(["mesh", "rules", str(missing)]) == 1
    assert "cannot read JSON" in capsys.readouterr().err
