"""Sans-I/O plumbing shared by the SQLite and PostgreSQL backends.

Ledger and audit operations are written once as generators that yield `Q` (SQL with `?`
placeholders plus parameters) and receive the result rows. A backend only drives such a
generator inside one transaction of its own kind, sync or async. This keeps a single copy of
the money logic for both engines and both calling styles.

A `Q` carrying a `batch` stands for several statements whose answers the caller reads together:
`batch_steps` yields one and hands back each statement's rows. A backend runs them in order, and
may send them all before waiting for any answer (PostgreSQL pipelines them: one round trip). Each
statement still starts after the previous one has finished, so under READ COMMITTED a read batched
after a ``FOR UPDATE`` sees everything committed before that lock was granted.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from amp_tools.clock import utc

__all__ = ["Dialect", "Q", "Row", "Steps", "StepsFactory", "batch_steps", "drive_sync", "from_us", "to_us"]

T = TypeVar("T")
Row = tuple[Any, ...]
Steps = Generator["Q", list[Row], T]
StepsFactory = Callable[[], Steps[T]]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Q:
    """One statement: SQL written with `?` placeholders, and its parameters."""

    sql: str
    params: tuple[Any, ...] = ()
    #: The caller ignores the result (a write whose rows are not read): a backend may send it
    #: without waiting for the answer (PostgreSQL pipelines it; an error still aborts the transaction
    #: before it commits). The generator receives [] for it.
    nowait: bool = False
    #: With `nowait`: a write that touches no row another `merge` write of the same run touches (the
    #: aggregate and audit writes). A backend may send a run of them as one statement (PostgreSQL:
    #: one ``WITH`` of data-modifying statements), before any other statement of the transaction.
    merge: bool = False
    #: Statements run in order in place of this one (`sql` is then only a label); the generator
    #: receives one row per statement, holding that statement's rows (see `batch_steps`).
    batch: tuple[Q, ...] = ()
    #: The statement is a whole transaction by itself (PostgreSQL runs it in autocommit mode, without
    #: BEGIN and COMMIT: one round trip, its locks held only while it runs); only the first statement of
    #: a transaction may be one, and none may follow it. Its last two parameters are the backend's to
    #: set: whether its commit waits for the WAL flush (the transaction's ``flush``), and whether it is
    #: sent a second time after the connection was cut off while it ran (the first may have committed).
    alone: bool = False


@dataclass(frozen=True, slots=True)
class Dialect:
    """The little that differs between the engines inside a transaction."""

    name: str
    #: Appended to the SELECT of a row the transaction is about to change. SQLite needs none:
    #: BEGIN IMMEDIATE already holds the database's single write lock.
    for_update: str


SQLITE = Dialect("sqlite", "")
POSTGRES = Dialect("postgresql", " FOR UPDATE")


def to_us(value: datetime) -> int:
    """Microseconds since the epoch: exact, sortable, and the same column type in both engines."""
    return (utc(value) - _EPOCH) // _US


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def batch_steps(*queries: Q) -> Steps[list[list[Row]]]:
    """Run `queries` in order, answered together; returns each one's rows (``[]`` for a `nowait` one)."""
    rows = yield Q("batch", batch=queries)
    return [list(r[0]) for r in rows]


def drive_sync(factory: StepsFactory[T], execute: Callable[[Q], list[Row]],
               execute_batch: Callable[[tuple[Q, ...]], list[list[Row]]] | None = None) -> T:
    """Run a step generator to completion with a synchronous `execute`; a batch goes to `execute_batch`
    (default: each statement through `execute`, one after another)."""
    gen = factory()
    try:
        query = next(gen)
        while True:
            if query.batch:
                answers = execute_batch(query.batch) if execute_batch else [execute(q) for q in query.batch]
                query = gen.send([(rows,) for rows in answers])
            else:
                query = gen.send(execute(query))
    except StopIteration as stop:
        result: T = stop.value
        return result
