"""DuckDB databases kept open for the next conversion, as a warm container keeps its clients.

Opening an in-memory DuckDB database costs about 10 ms of CPU (and starts a worker thread
per vCPU), as much as converting a small file does; a connection to a database already open
costs nothing. :class:`DuckDBPool` keeps the databases the conversions opened, and hands
each conversion a database to itself, with the threads and memory limit it asks for, on a
connection of its own: what a conversion leaves in its connection (temporary tables such as
DuckDB's reject tables, registered views, session settings) goes with it. On Lambda one
conversion runs at a time, so the pool holds one database; the embedded runtime, running a
function's invocations on threads of one process, opens one per concurrent conversion.

A database DuckDB invalidated (after a fatal or internal error) is closed, not kept.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from typing import Any

import duckdb

# after one of these, DuckDB refuses every further query on the database
INVALIDATING = (duckdb.FatalException, duckdb.InternalException)


class PooledConnection:
    """A conversion's connection, on a database of the pool until :meth:`release`."""

    def __init__(self, pool: DuckDBPool, key: tuple[int, str], database: Any) -> None:
        self._pool = pool
        self._key = key
        self._database = database
        self.con: Any = database.cursor()

    def release(self, failure: BaseException | None = None) -> None:
        """Close the connection; its database goes back to the pool, unless ``failure``
        (what ended the conversion, if anything) left it invalidated."""
        self.con.close()
        self._pool.give_back(self._key, self._database, keep=not isinstance(failure, INVALIDATING))


class DuckDBPool:
    """Open DuckDB databases, each used by one conversion at a time.

    ``spill_root``: where each database's spill directory (DuckDB's ``temp_directory``) is
    made (default: the system temp dir, ``/tmp`` on Lambda)."""

    def __init__(self, spill_root: str | None = None) -> None:
        self.spill_root = spill_root
        self._idle: dict[tuple[int, str], list[Any]] = {}
        self._spill: dict[int, str] = {}  # id(database) -> its spill directory
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # databases opened so far

    def connect(self, threads: int, memory_limit: str) -> PooledConnection:
        """A connection on a database of ``threads`` threads and ``memory_limit``, which no
        other conversion uses until the connection is released."""
        key = (threads, memory_limit)
        with self._lock:
            idle = self._idle.get(key)
            database = idle.pop() if idle else None
        if database is None:
            database = self._open(threads, memory_limit)
        return PooledConnection(self, key, database)

    def _open(self, threads: int, memory_limit: str) -> Any:
        spill = tempfile.mkdtemp(prefix="lakegov-duckdb-", dir=self.spill_root)
        database = duckdb.connect(
            config={
                "threads": threads,
                "memory_limit": memory_limit,
                "temp_directory": spill,
                "preserve_insertion_order": True,
            }
        )
        with self._lock:
            self._spill[id(database)] = spill
            self.opened += 1
        return database

    def give_back(self, key: tuple[int, str], database: Any, *, keep: bool) -> None:
        if keep and not _usable(database):  # invalidated by an error the caller wrapped
            keep = False
        with self._lock:
            if keep and not self._closed:
                self._idle.setdefault(key, []).append(database)
                return
        self._close(database)

    def _close(self, database: Any) -> None:
        with self._lock:
            spill = self._spill.pop(id(database), None)
        try:
            database.close()
        finally:
            if spill:
                shutil.rmtree(spill, ignore_errors=True)

    def close(self) -> None:
        """Close the idle databases (one in use is closed when it is given back)."""
        with self._lock:
            self._closed = True
            idle = [database for databases in self._idle.values() for database in databases]
            self._idle.clear()
        for database in idle:
            self._close(database)


def _usable(database: Any) -> bool:
    """Whether ``database`` still answers a query (DuckDB refuses every query on a database
    a fatal or internal error invalidated, whatever the conversion reported)."""
    try:
        cursor = database.cursor()
        try:
            cursor.execute("SELECT 1").fetchall()
        finally:
            cursor.close()
    except duckdb.Error:
        return False
    return True
