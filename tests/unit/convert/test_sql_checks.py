"""The SQL checks that turn a text column into its type (``lakegov.convert.sql``), pinned
text by text: what fits a type exactly, and what makes the read stop to widen it. The
engine's speed depends on these expressions being cheap; their answers must not move."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pytest

from lakegov.convert.sql import WIDEN, fits, typed_text

FITS = {
    pa.int64(): {
        "fit": ["0", "5", "-5", "9223372036854775807", "-9223372036854775808"],
        "no": ["007", "+5", " 5", "5 ", "1e3", "1.5", "1_000", "0x10", "9223372036854775808", "x"],
    },
    pa.float64(): {
        "fit": [
            "0",
            "0.5",
            "1.5",
            "-7.5",
            "+5",
            "1e3",
            "0e5",
            "9007199254740992",
            "12345678901234.5",
        ],
        "no": [
            "007",
            "05.5",
            "00",
            "9007199254740993",
            "-9007199254740993",
            "12345678901234567890",
            "x",
            "0é",
        ],
    },
    pa.bool_(): {"fit": ["true", "False", "TRUE"], "no": ["t", "1", "yes", "tRUE"]},
    pa.date32(): {"fit": ["2026-11-01"], "no": ["2026-1-1", "2026-11-0é", "2026-11-01 10:00", "x"]},
    pa.timestamp("us"): {
        "fit": ["2026-11-01 10:00", "2026-11-01T10:00:00", "2026-11-01 10:00:00.123456"],
        "no": ["2026-11-01 10:00:00+02", "2026-11-01 10:00:00Z", "2026-11-01 10:00-05", "x"],
    },
    pa.timestamp("us", tz="UTC"): {
        "fit": ["2026-11-01 10:00:00+02", "2026-11-01 10:00:00Z", "2026-11-01 10:00:00-05:00"],
        "no": ["2026-11-01 10:00:00", "x"],
    },
    pa.decimal128(38, 0): {"fit": ["12345678901234567890", "-1", "0"], "no": ["01", "1.0", "+1"]},
}
CASES = [(t, text, ok) for t, cases in FITS.items() for ok in ("fit", "no") for text in cases[ok]]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@pytest.mark.parametrize(("t", "text", "ok"), CASES, ids=[f"{c[0]}-{c[1]!r}" for c in CASES])
def test_a_text_fits_its_type_exactly_or_stops_the_read(
    con: duckdb.DuckDBPyConnection, t: pa.DataType, text: str, ok: str
) -> None:
    source = "(SELECT ?::VARCHAR AS c)"
    fitted = con.execute(f"SELECT {fits(t, 'c')} FROM {source}", [text]).fetchone()
    assert fitted is not None and fitted[0] is (ok == "fit")
    query = f"SELECT {typed_text(t, 'c', 3)} FROM {source}"
    if ok == "fit":
        con.execute(query, [text])
    else:
        with pytest.raises(duckdb.Error, match=f"{WIDEN} 3 "):
            con.execute(query, [text])
