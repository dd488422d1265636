"""The SQLite ledger backend: one file, many threads and processes.

Every write is one ``BEGIN IMMEDIATE`` transaction: it takes the database's single write lock
up front, so the check-and-reserve read and the insert see the same state, across threads and
processes alike. WAL lets readers run beside the writer; ``busy_timeout`` makes waiting writers
queue instead of failing.

Durability (``durability=`` of `SqliteLedger` / `open_ledger`), never changed silently:

* ``"full"`` (the default): WAL with ``synchronous=FULL``. Every commit that must be on disk
  (``flush=True``, the default of every write) is fsynced before it returns, so a payment sent,
  a commit or a refund that returned survives a process crash, ``kill -9``, an OS crash and a
  power loss. A write made with ``flush=False`` (the payment lifecycle's reservations, see
  `amp_tools.payments.states`) commits with ``synchronous=NORMAL`` for that one transaction: it is
  appended to the WAL without an fsync, survives a process crash or ``kill -9``, and is made
  durable by the next flushed commit (the WAL is one append-only file, synced up to its end).
* ``"normal"``: WAL with ``synchronous=NORMAL``. The WAL is fsynced only at checkpoints. A
  commit that returned survives a process crash or ``kill -9`` (the data is in the OS page cache
  and the WAL is replayed on the next open), and the database is never corrupted; but on an OS
  crash or power loss the *last* transactions before the failure may roll back. For a money
  ledger that means a reservation can vanish after its payment request was sent: the budget then
  under-reports that payment until reconciliation. Choose it only where that risk is accepted.

Async calls run on a small dedicated thread pool, each thread with its own connection, so the
event loop never blocks. Async *writes* of a file ledger go through group commit (`_group`):
concurrent ones share one transaction and one fsync, each in its own savepoint, and none returns
before that commit is durable. Sync twins use a connection of the calling thread. ``:memory:`` uses
one shared connection behind a lock (threads must see the same data; SQLite's shared cache
would fail fast with "table is locked" instead of waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from amp_tools.clock import Clock
from amp_tools.errors import ConfigError
from amp_tools.private import private_file

from ._engine import PolicyEngine
from ._group import GroupCommitter
from ._sql import SQLITE, Q, Row, Steps, StepsFactory, drive_sync
from .base import LedgerBase
from .schema import migrate_steps

__all__ = ["SqliteLedger"]

T = TypeVar("T")
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


class SqliteLedger(LedgerBase):
    dialect = SQLITE

    def __init__(self, path: str | Path, *, clock: Clock | None = None, engine: PolicyEngine | None = None,
                 busy_timeout_ms: int = 60_000, threads: int = 4, durability: str = "full") -> None:
        if durability not in _SYNCHRONOUS:
            raise ConfigError(f"durability {durability!r} must be 'full' (survives power loss, the default) or "
                              "'normal' (survives a process crash; the last commits may roll back on power loss)")
        super().__init__(clock=clock, engine=engine)
        self.durability = durability
        self.memory = str(path) == ":memory:"
        self.path = str(path) if self.memory else str(Path(path).expanduser())
        if not self.memory:
            # Created 0600 before SQLite opens it (SQLite would make it 0644), so the payment history and
            # approvals are private, and so are the -wal and -shm files, which SQLite gives the same mode.
            private_file(self.path)
        self._busy_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._mem_lock = threading.RLock()
        self._executor = ThreadPoolExecutor(max_workers=1 if self.memory else threads,
                                            thread_name_prefix="amp-ledger-sqlite")
        self._closed = False
        self._synchronous: dict[int, str] = {}  # id(connection) -> its current PRAGMA synchronous
        self._group = None if self.memory else GroupCommitter(self._conn, self._prepare)
        self._run_write_sync(lambda: migrate_steps(SQLITE))

    # -------------------------------------------------------------- connections
    def _ensure_wal(self, conn: sqlite3.Connection) -> None:
        # Switching the journal mode can answer "database is locked" at once, without the busy handler,
        # while another process opens or checkpoints the file: check first, and retry within busy_timeout.
        deadline = time.monotonic() + self._busy_ms / 1000
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()
                if mode and str(mode[0]).lower() == "wal":
                    return
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self._busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise ConfigError(f"cannot open the ledger database {self.path!r}: {exc}") from exc
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_ms)}")
        if not self.memory:
            self._ensure_wal(conn)
        conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.durability]}")
        conn.execute("PRAGMA foreign_keys = ON")
        with self._all_lock:
            self._all.append(conn)
            self._synchronous[id(conn)] = _SYNCHRONOUS[self.durability]
        return conn

    def _prepare(self, conn: sqlite3.Connection, flush: bool) -> None:
        """Set the connection's fsync level for the next transaction (outside any transaction): the
        ledger's own when the commit must be flushed, NORMAL (WAL append, no fsync) when it need not."""
        if self.memory:
            return
        want = _SYNCHRONOUS[self.durability] if flush else "NORMAL"
        if self._synchronous.get(id(conn)) != want:  # only one thread uses a connection at a time
            conn.execute(f"PRAGMA synchronous = {want}")
            self._synchronous[id(conn)] = want

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigError("the ledger is closed")
        if self.memory:
            with self._all_lock:
                if self._all:
                    return self._all[0]
            return self._connect()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    # -------------------------------------------------------------- transactions
    def _transaction(self, factory: StepsFactory[T], begin: str, flush: bool = True) -> T:
        with self._mem_lock if self.memory else contextlib.nullcontext():
            conn = self._conn()
            if begin != "BEGIN":
                self._prepare(conn, flush)

            def execute(query: Q) -> list[Row]:
                cur = conn.execute(query.sql, query.params)
                return cur.fetchall() if cur.description is not None else []

            conn.execute(begin)
            try:
                result = drive_sync(factory, execute)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def _run_write_sync(self, factory: StepsFactory[T], flush: bool = True) -> T:
        return self._transaction(factory, "BEGIN IMMEDIATE", flush)

    def _run_read_sync(self, factory: StepsFactory[T]) -> T:
        return self._transaction(factory, "BEGIN")

    async def _run_write(self, factory: StepsFactory[T], flush: bool = True) -> T:
        if self._group is not None:
            if self._closed:
                raise ConfigError("the ledger is closed")
            return await self._group.run(factory, flush)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run_write_sync, factory, flush)

    async def _run_read(self, factory: StepsFactory[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run_read_sync, factory)

    # -------------------------------------------------------------- lifecycle
    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._group is not None:
            self._group.close()
        self._executor.shutdown(wait=True)
        with self._all_lock:
            conns, self._all = self._all, []
            self._synchronous.clear()
        for conn in conns:
            conn.close()

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close_sync)

    def explain(self, sql: str, params: tuple[object, ...] = ()) -> list[str]:
        """`EXPLAIN QUERY PLAN` details of a statement (tests assert the window index is used)."""
        rows = self._run_read_sync(lambda: _explain_steps(sql, params))
        return [str(r[3]) for r in rows]


def _explain_steps(sql: str, params: tuple[object, ...]) -> Steps[list[Row]]:
    rows = yield Q("EXPLAIN QUERY PLAN " + sql, params)
    return rows
