"""Group commit for the SQLite ledger's async writes: one transaction, one fsync, many callers.

Concurrent async writes of one process queue here; a single writer thread takes whatever is
queued (up to `MAX_BATCH`) and runs it as one ``BEGIN IMMEDIATE`` transaction, each caller's steps
inside its own SAVEPOINT (a caller alone in its batch needs none: the transaction is its own). A
caller whose steps raise (a policy refusal, a bad argument) is rolled back to its savepoint alone
and gets its exception; the others go on. Nobody is answered before
the COMMIT has returned, so every result handed back is as durable as a transaction of its own.
A caller may say its write need not wait for the flush (``flush=False``: a reservation, see
`amp_tools.payments.states`); a batch whose callers all say so commits with ``synchronous=NORMAL``
(appended to the WAL, no fsync), any other batch with the ledger's own setting (``FULL``: on disk,
together with every unflushed batch before it, as the WAL is one append-only file). If the COMMIT
itself fails, every caller of the batch gets that error and none of their changes exists.

The callers run one after another on one connection, so each sees the changes of those before
it: the same outcomes as running the transactions serially in queue order, which is what the
database's single write lock gave them anyway; only the fsyncs are shared.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ._sql import Q, Row, StepsFactory, drive_sync

__all__ = ["MAX_BATCH", "GroupCommitter"]

T = TypeVar("T")
MAX_BATCH = 64


class GroupCommitter:
    """Batches write step-factories into shared transactions on the connection `conn()` gives the writer
    thread; `prepare(conn, flush)` sets the connection up before each batch's BEGIN."""

    def __init__(self, conn: Callable[[], sqlite3.Connection],
                 prepare: Callable[[sqlite3.Connection, bool], None] | None = None) -> None:
        self._conn = conn
        self._prepare = prepare
        self._lock = threading.Lock()
        self._queue: list[tuple[StepsFactory[Any], Future[Any], bool]] = []
        self._busy = False
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amp-ledger-sqlite-commit")
        #: Transactions run and callers served (for the benchmarks; callers / batches is the grouping).
        self.batches = 0
        self.callers = 0

    async def run(self, factory: StepsFactory[T], flush: bool = True) -> T:
        future: Future[T] = Future()
        with self._lock:
            self._queue.append((factory, future, flush))
            start, self._busy = not self._busy, True
        if start:
            self._writer.submit(self._drain)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                if not batch:
                    self._busy = False
                    return
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[StepsFactory[Any], Future[Any], bool]]) -> None:
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn = self._conn()
            if self._prepare is not None:
                self._prepare(conn, any(flush for _factory, _future, flush in batch))

            def execute(query: Q) -> list[Row]:
                cur = conn.execute(query.sql, query.params)
                return cur.fetchall() if cur.description is not None else []

            # A caller alone in its batch needs no savepoint: its refusal rolls the whole transaction back.
            alone = len(batch) == 1
            conn.execute("BEGIN IMMEDIATE")
            try:
                for factory, future, _flush in batch:
                    if not alone:
                        conn.execute("SAVEPOINT amp_one")
                    try:
                        result = drive_sync(factory, execute)
                    except Exception as exc:
                        conn.execute("ROLLBACK" if alone else "ROLLBACK TO amp_one")
                        if not alone:
                            conn.execute("RELEASE amp_one")
                        outcomes.append((future, None, exc))
                    else:
                        if not alone:
                            conn.execute("RELEASE amp_one")
                        outcomes.append((future, result, None))
                if conn.in_transaction:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException as exc:  # nothing of the batch was committed: everyone learns why
            for _factory, future, _flush in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.callers += len(batch)
        for future, result, error in outcomes:
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
