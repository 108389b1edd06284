"""DuckDB databases kept open between conversions (a warm container's): one is opened, not
one per file; each conversion still has one to itself; an invalidated one is not kept."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from lakegov.convert import csv_read, engine
from lakegov.convert import databases as databases_module
from lakegov.convert.databases import DuckDBPool
from lakegov.convert.options import DatasetOptions
from lakegov.errors import RejectedFile

CLEAN = b"id,name\n1,a\n2,b\n"
RAGGED = b"id,name\n1,a\n2,b,extra\n3,c\n"


def convert(data: bytes, pool: DuckDBPool | None, workdir: Path) -> tuple[Any, list[bytes]]:
    sink, exceptions = io.BytesIO(), io.BytesIO()
    result = engine.convert(
        io.BytesIO(data),
        sink,
        options=DatasetOptions(max_bad_row_fraction=0.5),  # the ragged row set aside
        source_name="file.csv",
        exceptions_sink=lambda: exceptions,
        workdir=str(workdir),
        databases=pool,
    )
    table = pq.read_table(io.BytesIO(sink.getvalue()))
    return (result, table.to_pylist()), exceptions.getvalue().splitlines()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every database DuckDB opens from here on."""
    seen: list[Any] = []
    connect = duckdb.connect

    def counting(*args: Any, **kwargs: Any) -> Any:
        database = connect(*args, **kwargs)
        seen.append(database)
        return database

    monkeypatch.setattr(databases_module.duckdb, "connect", counting)
    return seen


def test_conversions_through_one_pool_open_one_database(tmp_path: Path, opened: list[Any]) -> None:
    pool = DuckDBPool()
    try:
        outputs = [convert(data, pool, tmp_path) for data in (RAGGED, CLEAN, RAGGED, CLEAN)]
    finally:
        pool.close()
    assert len(opened) == 1
    # and each is what a conversion on a database of its own gives
    alone = [convert(data, None, tmp_path) for data in (RAGGED, CLEAN)]
    assert len(opened) == 3
    for (got, got_exceptions), (want, want_exceptions) in zip(outputs, alone * 2, strict=True):
        assert got[1] == want[1]
        assert got[0].bad_row_count == want[0].bad_row_count
        assert got_exceptions == want_exceptions
    # the ragged row of the file before is not reported again in the clean one
    assert outputs[1][0][0].bad_row_count == 0 and outputs[1][1] == []
    assert outputs[2][0][0].bad_row_count == 1


def test_conversions_at_once_have_a_database_each(tmp_path: Path, opened: list[Any]) -> None:
    pool = DuckDBPool()
    try:
        first = pool.connect(2, "256MB")
        second = pool.connect(2, "256MB")  # while the first is in use
        assert len(opened) == 2
        first.release()
        second.release()
        third = pool.connect(2, "256MB")  # an idle one is handed out again
        other = pool.connect(1, "256MB")  # asked with other threads: a database of its own
        assert len(opened) == 3
        third.release()
        other.release()
    finally:
        pool.close()


def test_a_rejected_file_leaves_its_database_to_the_next(tmp_path: Path, opened: list[Any]) -> None:
    pool = DuckDBPool()
    try:
        with pytest.raises(RejectedFile):
            convert(b"id,name\n", pool, tmp_path)
        convert(CLEAN, pool, tmp_path)
    finally:
        pool.close()
    assert len(opened) == 1


def test_a_database_duckdb_invalidated_is_closed_not_kept(
    tmp_path: Path, opened: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = DuckDBPool(spill_root=str(tmp_path / "spill"))
    (tmp_path / "spill").mkdir()
    convert(CLEAN, pool, tmp_path)
    sample = csv_read._sample_types

    def fatal(*args: Any, **kwargs: Any) -> Any:
        raise duckdb.FatalException("database invalidated")

    monkeypatch.setattr(csv_read, "_sample_types", fatal)
    with pytest.raises(duckdb.FatalException):
        convert(CLEAN, pool, tmp_path)
    monkeypatch.setattr(csv_read, "_sample_types", sample)
    with pytest.raises(duckdb.ConnectionException):  # closed, with its spill directory
        opened[0].execute("SELECT 1")
    assert len(list((tmp_path / "spill").iterdir())) == 0
    convert(CLEAN, pool, tmp_path)  # the next conversion opens a new one
    assert len(opened) == 2
    pool.close()
    with pytest.raises(duckdb.ConnectionException):
        opened[1].execute("SELECT 1")


def test_a_database_that_no_longer_answers_is_not_given_back_to_the_pool(tmp_path: Path) -> None:
    # Given a conversion's database that stopped answering, whatever its conversion reported
    # (an invalidating error the engine wrapped as a rejected file, say)
    pool = DuckDBPool(spill_root=str(tmp_path))
    first = pool.connect(1, "64MB")
    first.con.close()
    first._database.close()  # every query on it now fails
    # When the conversion gives it back as if all were well
    first._pool.give_back(first._key, first._database, keep=True)
    # Then it is not kept: the next conversion gets a database that answers
    second = pool.connect(1, "64MB")
    try:
        assert second._database is not first._database
        assert second.con.execute("SELECT 42").fetchone() == (42,)
    finally:
        second.release()
        pool.close()
    assert pool.opened == 2
