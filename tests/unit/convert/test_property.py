"""Property: whatever the converter accepts, it writes back unchanged (issue 8)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Run = Callable[..., Any]

# Text that stays text: a letter first, then anything a CSV field can hold (delimiters,
# quotes, newlines, non-ASCII). Values are compared exactly.
texts = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("abcXYZéß"),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
        max_size=20,
    ),
)
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False, width=64)
rows = st.lists(
    st.tuples(
        st.one_of(st.none(), ints), st.one_of(st.none(), floats), st.one_of(st.none(), texts)
    ),
    min_size=1,
    max_size=40,
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (
        math.isclose(a, b, rel_tol=0, abs_tol=0) if not math.isnan(a) else math.isnan(b)
    )


@SETTINGS
@given(rows)
def test_csv_round_trip(run: Run, data: list[tuple[int | None, float | None, str | None]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["i", "f", "s"])
    for i, f, s in data:
        writer.writerow(
            ["" if i is None else i, "" if f is None else repr(f), "" if s is None else s]
        )
    out = run(buf.getvalue().encode(), "p.csv")
    table = out.table
    assert table.num_rows == len(data)
    got_i = table.column("i").to_pylist()
    got_f = table.column("f").to_pylist()
    got_s = table.column("s").to_pylist()
    assert got_i == [i for i, _, _ in data]
    assert all(
        _same_float(None if g is None else float(g), e)
        for g, (_, e, _) in zip(got_f, data, strict=True)
    )
    assert got_s == [s for _, _, s in data]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), ints, texts),
    lambda children: st.dictionaries(st.sampled_from(["a", "b", "c"]), children, max_size=3),
    max_leaves=8,
)


@SETTINGS
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "k": ints,
                "v": texts,
                "n": st.dictionaries(st.sampled_from(["x", "y"]), ints, max_size=2),
            }
        ),
        min_size=1,
        max_size=30,
    )
)
def test_json_lines_round_trip(run: Run, records: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    out = run(data, "p.jsonl")
    got = out.table.to_pylist()
    assert [r["k"] for r in got] == [r["k"] for r in records]
    assert [r["v"] for r in got] == [r["v"] for r in records]
    assert [{k: v for k, v in (r["n"] or {}).items() if v is not None} for r in got] == [
        r["n"] for r in records
    ]
