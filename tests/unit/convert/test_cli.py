"""`lakegov convert IN OUT`: one-line summary, one-line reason, nothing partial left."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakegov.convert.cli import register


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lakegov")
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_converts_a_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes("id;name\n1;Zoé\n2;Bob\n".encode("latin-1"))
    out = tmp_path / "out.parquet"
    code = main(
        ["convert", str(src), str(out), "--encoding", "latin-1", "--delimiter", "semicolon"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out.count("\n") == 1 and "2 rows out" in captured.out
    assert pq.read_table(out).to_pylist() == [{"id": 1, "name": "Zoé"}, {"id": 2, "name": "Bob"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.parquet"]


def test_bad_file_exits_non_zero_with_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"a,b\n1,2\n3\n")
    out = tmp_path / "out.parquet"
    code = main(["convert", str(src), str(out)])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == "rejected: ragged_rows: line 3: expected 2 fields (lines 3)\n"
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_exceptions_mode_writes_the_exceptions_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"a": 1}\nnot json\n{"a": 2}\n')
    out = tmp_path / "out.parquet"
    exc = tmp_path / "bad.jsonl"
    code = main(
        [
            "convert",
            str(src),
            str(out),
            "--bad-rows",
            "exceptions",
            "--exceptions",
            str(exc),
            "--max-bad-fraction",
            "0.5",
        ]
    )
    assert code == 0
    assert "1 bad rows" in capsys.readouterr().out
    assert [json.loads(x)["line"] for x in exc.read_text().splitlines()] == [2]
    assert pq.read_table(out).column("a").to_pylist() == [1, 2]


def test_declared_schema_file(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"id,v\n1,2\n")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps([{"name": "id", "type": "int"}, {"name": "v", "type": "double"}]))
    out = tmp_path / "out.parquet"
    assert main(["convert", str(src), str(out), "--schema", str(schema)]) == 0
    assert str(pq.read_table(out).schema.field("v").type) == "double"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bad-rows", "exceptions"], "error: --bad-rows exceptions needs --exceptions FILE\n"),
        (["--delimiter", "::"], "error: --delimiter must be one character, not '::'\n"),
    ],
)
def test_usage_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(b"a\n1\n")
    assert main(["convert", str(src), str(tmp_path / "o.parquet"), *extra]) == 1
    assert capsys.readouterr().err == message


def test_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", str(tmp_path / "nope.csv"), str(tmp_path / "o.parquet")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_bad_row_is_set_aside_at_its_line_with_an_exceptions_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.csv"
    rows = [f"{i},{i}" for i in range(1, 41)]
    rows[9] = "10"  # physical line 11
    src.write_text("a,b\n" + "\n".join(rows) + "\n")
    out = tmp_path / "out.parquet"
    exceptions = tmp_path / "bad.jsonl"
    assert main(["convert", str(src), str(out), "--exceptions", str(exceptions)]) == 0
    assert "1 bad rows set aside" in capsys.readouterr().out
    assert [json.loads(x)["line"] for x in exceptions.read_text().splitlines()] == [11]
    assert pq.read_table(out).num_rows == 39


def test_header_flags(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("Anna,Lisbon\nBob,Oslo\nAnna,Rome\n")
    out = tmp_path / "out.parquet"
    assert main(["convert", str(src), str(out)]) == 0
    assert pq.read_table(out).column_names == ["col_1", "col_2"]
    assert main(["convert", str(src), str(out), "--header"]) == 0
    assert pq.read_table(out).column_names == ["anna", "lisbon"]
    assert main(["convert", str(src), str(out), "--no-header"]) == 0
    assert pq.read_table(out).num_rows == 3


def test_a_workbook_sheet_and_a_fixed_width_file(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    out = tmp_path / "customers.parquet"
    book = ROOT / "tests/fixtures/formats/orders.ods"
    assert main(["convert", str(book), str(out), "--sheet", "Customers"]) == 0
    assert pq.read_table(out).column("name").to_pylist() == ["Ada", "Grace"]
    doc = tmp_path / "fw.json"
    doc.write_text(
        json.dumps(
            {
                "match": {"prefix": "-"},
                "format": "fixed_width",
                "fixed_width": {"columns": [{"name": "a", "width": 3}, {"name": "b", "width": 2}]},
            }
        )
    )
    src = tmp_path / "fw.txt"
    src.write_text("00142\n00217\n")
    assert main(["convert", str(src), str(out), "--schema", str(doc)]) == 0
    assert pq.read_table(out).to_pylist() == [{"a": "001", "b": 42}, {"a": "002", "b": 17}]
