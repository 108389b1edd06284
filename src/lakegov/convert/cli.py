"""``lakegov convert IN OUT``: the Lambda's converter on local files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from lakegov.convert.engine import convert_file
from lakegov.convert.options import ColumnSpec, DatasetOptions, options_from_document
from lakegov.errors import InvalidDocument, RejectedFile

_DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|", "\\t": "\t"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a CSV/JSON/Avro/Parquet/XML/spreadsheet/fixed-width file to Parquet",
        description="Runs the same converter as the convert function, on local files. "
        "OUT appears only if the conversion succeeds.",
    )
    parser.add_argument("input", metavar="IN", help="the landed file")
    parser.add_argument("output", metavar="OUT", help="the Parquet file to write")
    parser.add_argument(
        "--format",
        choices=["csv", "json", "parquet", "avro", "xml", "xlsx", "xls", "ods", "fixed_width"],
        help="default: detect (fixed_width needs --schema with a datasets/ document)",
    )
    parser.add_argument(
        "--compression", choices=["none", "gzip", "bz2", "zstd"], help="default: detect"
    )
    parser.add_argument(
        "--delimiter",
        help="CSV delimiter: one character, or comma|semicolon|tab|pipe (default: sniff)",
    )
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    header.add_argument(
        "--header", action="store_true", help="the CSV's first row is a header (default: detect)"
    )
    parser.add_argument("--encoding", help="text encoding, e.g. latin-1 (default utf-8)")
    parser.add_argument("--sheet", help="a workbook's sheet to convert (default: the first)")
    parser.add_argument(
        "--bad-rows",
        choices=["reject", "exceptions"],
        help="default: exceptions (set aside) when --exceptions FILE is given, else reject",
    )
    parser.add_argument("--exceptions", metavar="FILE", help="JSON Lines file for bad rows")
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        metavar="F",
        help="reject the file when more than this fraction of rows are bad (default 0.05)",
    )
    parser.add_argument(
        "--schema",
        metavar="FILE",
        help="a datasets/ document (JSON) or a JSON list of {name, type, nullable} columns",
    )
    parser.set_defaults(func=run_convert)


def _options(args: argparse.Namespace) -> DatasetOptions:
    options = DatasetOptions()
    if args.schema:
        doc = json.loads(Path(args.schema).read_text("utf-8"))
        if isinstance(doc, list):
            doc = {"match": {"prefix": "-"}, "schema": {"columns": doc}}
        _, options = options_from_document(doc, source=args.schema)
    changes: dict[str, object] = {}
    if args.format:
        changes["format"] = args.format
    if args.compression:
        changes["compression"] = args.compression
    if args.delimiter:
        delim = _DELIMITERS.get(args.delimiter, args.delimiter)
        if len(delim) != 1:
            raise ValueError(f"--delimiter must be one character, not {args.delimiter!r}")
        changes["delimiter"] = delim
    if args.no_header or args.header:
        changes["header"] = bool(args.header)
    if args.encoding:
        "".encode(args.encoding)  # LookupError for an unknown encoding
        changes["encoding"] = args.encoding
    if args.sheet:
        changes["sheet"] = args.sheet
    if args.bad_rows:
        changes["bad_rows"] = args.bad_rows
        if args.bad_rows == "exceptions" and not args.exceptions:
            raise ValueError("--bad-rows exceptions needs --exceptions FILE")
    elif not args.exceptions:
        changes["bad_rows"] = "reject"  # nowhere to set bad rows aside
    if args.max_bad_fraction is not None:
        if not 0 <= args.max_bad_fraction <= 1:
            raise ValueError("--max-bad-fraction must be between 0 and 1")
        changes["max_bad_row_fraction"] = args.max_bad_fraction
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def run_convert(args: argparse.Namespace) -> int:
    try:
        options = _options(args)
        result = convert_file(
            args.input, args.output, options=options, exceptions_path=args.exceptions
        )
    except RejectedFile as exc:
        lines = f" (lines {', '.join(map(str, exc.bad_lines))})" if exc.bad_lines else ""
        print(f"rejected: {exc.reason_code}: {exc.reason}{lines}", file=sys.stderr)
        return 2
    except InvalidDocument as exc:
        first = exc.issues[0] if exc.issues else None
        print(f"invalid --schema: {first}", file=sys.stderr)
        return 2
    except (OSError, ValueError, LookupError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.output}: {result.summary()} (schema {result.schema_fingerprint[:19]})")
    return 0


__all__ = ["ColumnSpec", "register", "run_convert"]
