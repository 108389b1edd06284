"""The byte search that lets a CSV skip the line scan for misplaced quotes: it may say
"maybe" on a clean file, never "no" on a file the line scan finds a row in."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from lakegov.convert import csv_read, run
from lakegov.convert.dialect import sniff_csv_dialect
from lakegov.convert.options import DatasetOptions

CLEAN = [
    '{i},"Smith, Jr.",Lisbon,"said ""hi"" {i}"',
    '{i},"""quoted"" start",Paris,',
    '{i},plain,"New York, NY",""',
]
MISPLACED = [
    '{i},07:31 "Lamp, LED",x',  # a quote inside an unquoted field
    '{i},"Smith, Jr." Lisbon,z',  # text after a closing quote
    '{i},name "{i}" x,y,z',
]


def file_of(tmp: Path, lines: list[str], newline: str) -> str:
    path = tmp / "data.csv"
    path.write_bytes(("id,name,city,note" + newline + newline.join(lines) + newline).encode())
    return str(path)


def scan(path: str) -> tuple[bool, list[int]]:
    """(the byte search's answer, the lines the line scan sets aside for a quote)."""
    options = DatasetOptions()
    dialect = sniff_csv_dialect(run.read_head(path), options)
    conversion = run.Run(options, None, tempfile.mkdtemp(), 2, "256MB")
    try:
        maybe = csv_read._may_hold_misplaced_quotes(path, dialect, 2)
        found = [
            b.line
            for b in csv_read._suspect_lines(conversion, path, dialect)
            if b.code == "malformed"
        ]
    finally:
        conversion.close()
    return maybe, found


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_clean_file_with_quotes_needs_no_line_scan(tmp_path: Path, newline: str) -> None:
    lines = [CLEAN[i % len(CLEAN)].format(i=i) for i in range(3000)]
    assert scan(file_of(tmp_path, lines, newline)) == (False, [])


@pytest.mark.parametrize("bad", MISPLACED)
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("at", [0, 1499, 2999])
def test_every_misplaced_quote_the_line_scan_finds_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str, newline: str, at: int
) -> None:
    # runs and pieces much smaller than the file: the row may sit across their cuts
    monkeypatch.setattr(csv_read, "GATE_CHUNK", 4096)
    monkeypatch.setattr(csv_read, "GATE_PIECE", 512)
    lines = [CLEAN[i % len(CLEAN)].format(i=i) for i in range(3000)]
    lines[at] = bad.format(i=at)
    maybe, found = scan(file_of(tmp_path, lines, newline))
    assert found == [at + 2]
    assert maybe
