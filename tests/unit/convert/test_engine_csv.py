"""CSV and its kin through the engine, on real generated files."""

from __future__ import annotations

import bz2
import gzip
import io
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from lakegov.convert.engine import convert
from lakegov.convert.options import ColumnSpec, DatasetOptions
from lakegov.errors import RejectedFile

Run = Callable[..., Any]


@pytest.mark.parametrize("delim", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(run: Run, delim: str) -> None:
    # Given a file whose delimiter is one of the four / When converted without options
    data = delim.join(["id", "name", "city"]) + "\n" + delim.join(["1", "Ann", "Paris"]) + "\n"
    data += delim.join(["2", "Bob", "Rome"]) + "\n"
    out = run(data.encode(), "people.txt")
    # Then the columns are split on it and typed
    assert out.result.delimiter == delim
    assert out.table.to_pylist() == [
        {"id": 1, "name": "Ann", "city": "Paris"},
        {"id": 2, "name": "Bob", "city": "Rome"},
    ]


def test_quoting_edge_cases(run: Run) -> None:
    # embedded delimiter, doubled quotes, embedded newline (LF and CRLF), empty quoted field
    data = (
        b"id,text,n\r\n"
        b'1,"a, b",1\r\n'
        b'2,"she said ""hi""",2\r\n'
        b'3,"line one\r\nline two",3\r\n'
        b'4,"",4\r\n'
        b"5,plain,5\r\n"
    )
    out = run(data)
    assert out.table.column("text").to_pylist() == [
        "a, b",
        'she said "hi"',
        "line one\r\nline two",
        None,
        "plain",
    ]
    assert out.table.column("n").to_pylist() == [1, 2, 3, 4, 5]


def test_utf8_bom_and_crlf(run: Run) -> None:
    data = "\ufeffnom,ville\r\nZoé,Zürich\r\n".encode()
    out = run(data)
    assert out.table.column_names == ["nom", "ville"]
    assert out.table.to_pylist() == [{"nom": "Zoé", "ville": "Zürich"}]


def test_declared_latin1_is_transcoded(run: Run) -> None:
    data = "nom;ville\nZoé;Besançon\n".encode("latin-1")
    out = run(data, options=DatasetOptions(encoding="latin-1"))
    assert out.table.to_pylist() == [{"nom": "Zoé", "ville": "Besançon"}]


def test_undeclared_latin1_is_rejected_as_encoding_with_the_line(run: Run) -> None:
    data = "nom;ville\nAnn;Paris\nZoé;Besançon\n".encode("latin-1")
    with pytest.raises(RejectedFile) as err:
        run(data)
    assert err.value.reason_code == "encoding"
    assert err.value.bad_lines == [3]


def test_declared_encoding_that_does_not_fit_is_rejected(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(
            b"a,b\n1,\xff\xfe\xfd\n",
            options=DatasetOptions(encoding="utf-8", delimiter=","),
            name="x.csv",
        )
    assert err.value.reason_code == "encoding"
    with pytest.raises(RejectedFile) as err:
        run(b"a,b\n1,\x81\n", options=DatasetOptions(encoding="cp1252"))
    assert err.value.reason_code == "encoding"


def test_column_names_are_normalised_and_deduplicated(run: Run) -> None:
    out = run(b"Customer ID,Name,name,,2nd\n1,a,b,c,d\n")
    assert out.table.column_names == ["customer_id", "name", "name_2", "col_4", "c_2nd"]
    assert out.result.renamed_columns["Customer ID"] == "customer_id"


def test_no_header_option(run: Run) -> None:
    out = run(b"1,a\n2,b\n", options=DatasetOptions(header=False))
    assert out.table.column_names == ["col_1", "col_2"]
    assert out.table.num_rows == 2


def test_leading_zero_identifiers_stay_text(run: Run) -> None:
    out = run(b"zip,n\n01234,1\n75001,2\n")
    assert out.table.column("zip").to_pylist() == ["01234", "75001"]
    assert out.table.schema.field("n").type == pa.int64()


def test_inferred_types(run: Run) -> None:
    data = b"i,f,b,d,ts,tz,s\n1,1.5,true,2026-11-20,2026-11-20 10:00:00,2026-11-20T10:00:00Z,x\n"
    out = run(data)
    types = {f.name: f.type for f in out.table.schema}
    assert types == {
        "i": pa.int64(),
        "f": pa.float64(),
        "b": pa.bool_(),
        "d": pa.date32(),
        "ts": pa.timestamp("us"),
        "tz": pa.timestamp("us", tz="UTC"),
        "s": pa.string(),
    }


# --------------------------------------------------------------------------- late type changes


def _late_text(n_null: int) -> bytes:
    rows = (
        ["id,late"] + [f"{i}," for i in range(n_null)] + [f"{n_null},hello", f"{n_null + 1},world"]
    )
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # many blocks, one row group
        {"row_group_rows": 10_000},  # the change comes 5 row groups in
    ],
)
def test_fifty_thousand_nulls_then_strings_convert_without_loss(
    run: Run, kwargs: dict[str, Any]
) -> None:
    out = run(
        _late_text(50_000),
        **kwargs,
    )
    assert out.table.schema.field("late").type == pa.string()
    late = out.table.column("late").to_pylist()
    assert late[:50_000] == [None] * 50_000
    assert late[50_000:] == ["hello", "world"]
    assert out.result.rows_out == 50_002


@pytest.mark.parametrize("row_group_rows", [1 << 20, 7_000])
def test_ints_then_floats_widen_to_float(run: Run, row_group_rows: int) -> None:
    rows = ["n"] + [str(i) for i in range(30_000)] + ["0.5", "1e3"]
    out = run(("\n".join(rows) + "\n").encode(), row_group_rows=row_group_rows)
    assert out.table.schema.field("n").type == pa.float64()
    values = out.table.column("n").to_pylist()
    assert (
        values[:3] == [0.0, 1.0, 2.0]
        and values[29_999] == 29_999.0
        and values[-2:] == [0.5, 1000.0]
    )
    meta = pq.ParquetFile(io.BytesIO(out.parquet)).metadata
    assert meta.num_rows == 30_002


def test_ints_then_text_keeps_the_original_text_within_a_row_group(run: Run) -> None:
    rows = ["code"] + [str(i) for i in range(20_000)] + ["A-17"]
    out = run(("\n".join(rows) + "\n").encode())
    assert out.table.schema.field("code").type == pa.string()
    assert out.table.column("code").to_pylist()[-2:] == ["19999", "A-17"]


def test_row_groups_are_written_at_the_configured_size(run: Run) -> None:
    rows = ["a,b"] + [f"{i},x{i}" for i in range(25_000)]
    out = run(("\n".join(rows) + "\n").encode(), row_group_rows=10_000)
    meta = pq.ParquetFile(io.BytesIO(out.parquet)).metadata
    # DuckDB cuts row groups at its 2,048-row vectors: the size asked for, rounded up
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        10_240,
        10_240,
        4_520,
    ]
    assert out.table.column("a").to_pylist() == list(range(25_000))


# --------------------------------------------------------------------------- bad rows


RAGGED = b'a,b,c\n1,2,3\n4,5\n"multi\nline",7,8\n9,10,11,12\n13,14,15\n'


def test_ragged_rows_reject_the_file_with_line_numbers(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(RAGGED)
    assert err.value.reason_code == "ragged_rows"
    assert err.value.bad_lines == [3, 6]  # physical lines, after a two-line record
    assert "line 3" in err.value.reason


def test_ragged_rows_go_to_exceptions_and_good_rows_go_on(run: Run) -> None:
    out = run(RAGGED, options=DatasetOptions(bad_rows="exceptions", max_bad_row_fraction=1.0))
    assert out.table.column("a").to_pylist() == ["1", "multi\nline", "13"]
    assert out.result.rows_in == 5 and out.result.rows_out == 3
    assert out.result.bad_row_count == 2
    assert [(r["line"], r["reason_code"], r["raw"]) for r in out.exceptions] == [
        (3, "ragged_rows", "4,5"),
        (6, "ragged_rows", "9,10,11,12"),
    ]
    assert [b.line for b in out.result.bad_rows] == [3, 6]


def test_bad_row_lines_are_right_in_later_blocks(run: Run) -> None:
    rows = ["a,b"] + [f"{i},{i}" for i in range(20_000)]
    rows[15_001] = "oops"  # physical line 15002
    with pytest.raises(RejectedFile) as err:
        run(("\n".join(rows) + "\n").encode(), options=DatasetOptions(bad_rows="reject"))
    assert err.value.bad_lines == [15_002]
    # the default sets it aside at the same line
    out = run(("\n".join(rows) + "\n").encode())
    assert [e["line"] for e in out.exceptions] == [15_002]
    assert out.result.rows_out == 19_999


def test_all_rows_bad_is_rejected_even_in_exceptions_mode(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(
            b"a,b,c\n1\n2\n",
            options=DatasetOptions(bad_rows="exceptions", max_bad_row_fraction=1.0),
        )
    assert err.value.reason_code == "ragged_rows"


def test_unterminated_quote_is_malformed(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b'a,b\n1,"never closed\n2,3\n')
    assert err.value.reason_code == "malformed"


@pytest.mark.parametrize("data", [b"", b"   \n", b"a,b,c\n"])
def test_empty_files_are_rejected(run: Run, data: bytes) -> None:
    with pytest.raises(RejectedFile) as err:
        run(data)
    assert err.value.reason_code == "empty"


# --------------------------------------------------------------------------- declared schema

DECLARED = DatasetOptions(
    columns=(
        ColumnSpec("id", "bigint", nullable=False),
        ColumnSpec("amount", "decimal(10,2)"),
        ColumnSpec("day", "date"),
    )
)


def test_declared_schema_is_enforced(run: Run) -> None:
    out = run(b"id,amount,day\n1,10.50,2026-11-20\n2,,2026-11-21\n", options=DECLARED)
    assert out.table.schema == pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("amount", pa.decimal128(10, 2)),
            ("day", pa.date32()),
        ]
    )
    assert out.table.column("amount").to_pylist()[1] is None


def test_declared_schema_value_that_does_not_fit_rejects_naming_column_and_line(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b"id,amount,day\n1,10.50,2026-11-20\nx,1,2026-11-21\n", options=DECLARED)
    assert err.value.reason_code == "schema_mismatch"
    assert err.value.bad_lines == [3]
    assert "column id" in err.value.reason and "'x'" in err.value.reason


def test_declared_schema_null_in_non_nullable_goes_to_exceptions(run: Run) -> None:
    options = DatasetOptions(
        columns=DECLARED.columns, bad_rows="exceptions", max_bad_row_fraction=1.0
    )
    out = run(b"id,amount,day\n1,1,2026-11-20\n,2,2026-11-21\n3,bad,2026-11-22\n", options=options)
    assert out.table.column("id").to_pylist() == [1]
    assert [(r["line"], r["reason_code"]) for r in out.exceptions] == [
        (3, "schema_mismatch"),
        (4, "schema_mismatch"),
    ]
    assert out.exceptions[1]["record"] == {"id": "3", "amount": "bad", "day": "2026-11-22"}


def test_declared_schema_undeclared_or_missing_columns_reject(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(b"id,amount,day,extra\n1,1,2026-11-20,x\n", options=DECLARED)
    assert err.value.reason_code == "schema_mismatch" and "extra" in err.value.reason
    with pytest.raises(RejectedFile) as err:
        run(b"amount,day\n1,2026-11-20\n", options=DECLARED)
    assert err.value.reason_code == "schema_mismatch" and "id" in err.value.reason


# --------------------------------------------------------------------------- compression, limits

PLAIN = b"id,name\n" + b"".join(b"%d,name %d\n" % (i, i) for i in range(5000))


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("x.csv.gz", gzip.compress),
        ("x.csv.bz2", bz2.compress),
        ("x.csv.zst", lambda d: zstandard.ZstdCompressor().compress(d)),
        ("x.csv", gzip.compress),  # detected from the magic bytes, whatever the name
    ],
)
def test_compressed_variants(run: Run, name: str, compress: Callable[[bytes], bytes]) -> None:
    out = run(compress(PLAIN), name)
    assert out.result.rows_out == 5000
    assert out.table.column("name").to_pylist()[-1] == "name 4999"
    assert out.result.bytes_decompressed == len(PLAIN)


def test_multi_member_gzip(run: Run) -> None:
    out = run(
        gzip.compress(PLAIN) + gzip.compress(b"".join(b"%d,more\n" % i for i in range(3))),
        "x.csv.gz",
    )
    assert out.result.rows_out == 5003


def test_name_says_gzip_but_content_is_not(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(PLAIN, "x.csv.gz")
    assert err.value.reason_code == "malformed"


def test_truncated_gzip_is_malformed(run: Run) -> None:
    data = gzip.compress(PLAIN)
    with pytest.raises(RejectedFile) as err:
        run(data[: len(data) // 2], "x.csv.gz")
    assert err.value.reason_code == "malformed"


def test_decompression_bomb_is_stopped_while_streaming(run: Run) -> None:
    bomb = gzip.compress(b"a,b\n" + b"0,0\n" * (20 * 1024 * 1024 // 4), compresslevel=9)
    assert len(bomb) < 100_000
    with pytest.raises(RejectedFile) as err:
        run(bomb, "bomb.csv.gz", options=DatasetOptions(max_decompression_ratio=100))
    assert err.value.reason_code == "decompression_bomb"


def test_too_large(run: Run) -> None:
    with pytest.raises(RejectedFile) as err:
        run(PLAIN, options=DatasetOptions(max_file_bytes=10_000))
    assert err.value.reason_code == "too_large"


def test_the_sink_needs_no_seek_and_gets_one_parquet_file(tmp_path: Any) -> None:
    class WriteOnly(io.RawIOBase):
        def __init__(self) -> None:
            self.buf = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.buf += bytes(b)
            return len(b)

    sink = WriteOnly()
    result = convert(io.BytesIO(PLAIN), sink, workdir=str(tmp_path))  # type: ignore[arg-type]
    assert result.output_bytes == len(sink.buf)
    assert pq.read_table(io.BytesIO(bytes(sink.buf))).num_rows == 5000
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


@pytest.mark.parametrize("options", [None, DECLARED], ids=["inferred", "declared_required"])
def test_a_local_file_sink_is_written_in_place_once(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, options: DatasetOptions | None
) -> None:
    # Given an empty local file as the sink, and a spy on the engine's copy to the sink
    copies: list[Any] = []
    monkeypatch.setattr("lakegov.convert.engine.shutil.copyfileobj", lambda *a: copies.append(a))
    data = b"id,amount,day\n1,10.50,2026-11-20\n2,,2026-11-21\n" if options else PLAIN
    work = tmp_path / "work"
    work.mkdir()
    path = tmp_path / "out.parquet"
    with path.open("wb") as sink:
        result = convert(io.BytesIO(data), sink, options=options, workdir=str(work))
    # Then DuckDB wrote the Parquet file at the sink's own path: nothing was copied through
    # the handle, and the file is whole (non-nullable columns marked required)
    assert copies == []
    table = pq.read_table(path)
    assert result.output_bytes == path.stat().st_size
    assert table.num_rows == result.rows_out
    if options is not None:
        assert table.schema.field("id").nullable is False
    assert list(work.iterdir()) == []


# --------------------------------------------------------------------------- the default policy


def _with_ragged(n_rows: int, bad_every: int) -> bytes:
    lines = [f"{i}" if i % bad_every == 0 else f"{i},x{i}" for i in range(1, n_rows + 1)]
    return ("a,b\n" + "\n".join(lines) + "\n").encode()


def test_by_default_bad_rows_under_the_threshold_are_set_aside(run: Run) -> None:
    # Given 200 rows of which 4 are ragged (2%) / When converted with the defaults
    out = run(_with_ragged(200, 50))
    # Then the good rows load and the bad ones are set aside with their lines
    assert out.result.rows_in == 200 and out.result.rows_out == 196
    assert out.result.bad_row_count == 4
    assert [(e["line"], e["reason_code"]) for e in out.exceptions] == [
        (51, "ragged_rows"),
        (101, "ragged_rows"),
        (151, "ragged_rows"),
        (201, "ragged_rows"),
    ]


def test_by_default_bad_rows_over_the_threshold_reject_the_file(run: Run) -> None:
    # Given 200 rows of which 20 are ragged (10%, over the default 5%)
    with pytest.raises(RejectedFile) as err:
        run(_with_ragged(200, 10))
    assert err.value.reason_code == "ragged_rows"
    assert "20 of 200 rows are bad" in err.value.reason
    assert err.value.bad_lines[:2] == [11, 21]
    # Then a dataset that tolerates more sets them aside
    out = run(_with_ragged(200, 10), options=DatasetOptions(max_bad_row_fraction=0.2))
    assert out.result.rows_out == 180 and len(out.exceptions) == 20


def test_a_late_zoned_timestamp_in_a_zoneless_column_widens_it_to_text(run: Run) -> None:
    # Given zoneless timestamps past the sample, then one with a zone
    rows = ["ts"] + ["2026-11-20 10:00:00"] * 30_000 + ["2026-11-20 10:00:00-05:00"]
    out = run(("\n".join(rows) + "\n").encode())
    # Then the column is text, every value as written (not shifted to UTC)
    assert out.table.schema.field("ts").type == pa.string()
    assert out.table.column("ts").to_pylist()[-2:] == rows[-2:]


def test_booleans_in_any_usual_case(run: Run) -> None:
    out = run(b"a\ntrue\nFALSE\nTrue\n")
    assert out.table.column("a").to_pylist() == [True, False, True]
