"""The PostgreSQL ledger backend (psycopg 3), for many hosts sharing one budget.

Transactions run at READ COMMITTED and serialize where money is decided: every write first
takes the budget row with ``SELECT ... FOR UPDATE`` (then the entry row, then the audit head:
one lock order, so no deadlocks). Each statement after the lock sees everything the previous
lock holder committed, so check-and-reserve is atomic across processes and hosts.

A write made with ``flush=False`` (the payment lifecycle's reservations, see
`amp_tools.payments.states`) starts with ``SET LOCAL synchronous_commit = off``: its COMMIT returns
without waiting for the WAL flush. The server writes WAL in commit order and a later synchronous
commit waits until the WAL is flushed up to its own record, so once such a commit (the payment's
``sending``) has returned, every asynchronous commit before it is on disk too. Every other
transaction keeps the server's setting.

A payment's reservation, each move of its lifecycle and its commit are one statement each
(``SELECT amp_reserve(...)``, ``amp_transition``, ``amp_commit``; `_reserve_fn`, `_commit_fn`), run
as its own transaction on the autocommit connection (`Q.alone`): one round trip, its commit
included, and its budget row locks held only while the server runs it. Its durability is set inside
it (``synchronous_commit`` local to that transaction). Cut off while it runs, it is sent once more,
told so: a reservation or a move recognizes what its first sending committed, a commit is idempotent;
cut off again, it fails with ``details["outcome"] == "unknown"``. When the policy disagrees with a
reservation the function committed (a bug, never a rule), the reservation is released at once and
`ReserveDisagreement` raised.

Every other transaction runs in psycopg's pipeline mode: writes whose result is not read
(``Q.nowait``) are sent without waiting, and a batch of statements (`_sql.batch_steps`) is sent at
once and answered together: a release waits on one round trip (its locks and reads) and on its
COMMIT.

Connections come from one bounded pool (`_pgpool.SharedPool`: ``pool_size``, default 4, or
``AMP_TOOLS_LEDGER_POOL_SIZE``), shared by the sync twins in every thread, by the async API on
every event loop (through a thread per connection), and by every ledger of the process opened on
the same database, schema and pool settings (a toolkit per user session still uses one pool per
process). A transaction waits up to ``pool_timeout`` seconds for a connection, then fails with
`LedgerBusy`; a server that refuses connections or cuts one off fails it with `LedgerUnavailable`.
Both are `ToolError`s, and neither leaves anything half-written: a transaction cut off before its
COMMIT was sent is rolled back by the server and retried once on a fresh connection; cut off while
committing, it fails with ``details["outcome"] == "unknown"``. `ConfigError` is only for mistakes
in the configuration, found when the ledger is opened.

`schema=` puts every table in its own PostgreSQL schema (created if missing), which tests use for
isolation.
"""

from __future__ import annotations

import functools
import re
import time
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from amp_tools.clock import Clock
from amp_tools.errors import ConfigError, LedgerUnavailable

from ._commit_fn import GeneralPath
from ._engine import PolicyEngine
from ._ops import release_steps
from ._reserve_fn import ReserveDisagreement
from ._sql import POSTGRES, Q, Row, Steps, StepsFactory, drive_sync
from .base import LedgerBase
from .schema import migrate_steps

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.pq import ExecStatus

    from ._pgpool import RETRY_HINT, SharedPool, pool_settings
except ImportError:  # pragma: no cover - the [postgres] extra is missing
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresLedger"]

T = TypeVar("T")
_TUPLES_OK = ExecStatus.TUPLES_OK if psycopg is not None else None
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATE_LOCK = 0x616D70  # advisory lock id: one migrator at a time
#: SQLSTATEs of a connection the server ended: connection exceptions (class 08), admin or crash
#: shutdown, and "cannot connect now" (starting up or shutting down).
_CUT_OFF = ("08", "57P01", "57P02", "57P03")
#: libpq's words for a connection attempt that a correct configuration would not fix.
_MISCONFIGURED = ("does not exist", "authentication failed", "pg_hba.conf", "password", "failed to resolve host",
                  "could not translate host name", "invalid", "certificate")


@functools.lru_cache(maxsize=2048)
def _pg(sql: str) -> str:
    # A literal % (modulo in the bucket migration) must be doubled once psycopg sees placeholders.
    # Cached: the ledger's statement texts are a small fixed set, converted once each.
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresLedger(LedgerBase):
    dialect = POSTGRES

    def __init__(self, url: str, *, clock: Clock | None = None, engine: PolicyEngine | None = None,
                 schema: str | None = None, pool_size: int | None = None, pool_timeout: float | None = None,
                 connect_timeout: int = 10, application_name: str = "amp-tools-ledger") -> None:
        if psycopg is None:
            raise ConfigError("the PostgreSQL ledger needs psycopg 3 and psycopg-pool; "
                              "install amp-agent-payments[postgres]")
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise ConfigError(f"schema {schema!r} must be a lower-case SQL identifier such as 'amp_tools'")
        size, timeout = pool_settings(pool_size, pool_timeout)
        try:
            in_url = conninfo_to_dict(url)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"the PostgreSQL ledger URL is not valid: {exc}") from None
        super().__init__(clock=clock, engine=engine)
        self.url, self.schema = url, schema
        self.pool_size, self.pool_timeout = size, timeout
        self._kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout}
        if "application_name" not in in_url:  # what pg_stat_activity shows for our connections
            self._kwargs["application_name"] = application_name
        if schema is not None:
            self._kwargs["options"] = f"-c search_path={schema}"
        self._closed = False
        # Ledgers of one process on the same database, schema and settings share one pool.
        self._pool, fresh = SharedPool.acquire(url, self._kwargs, size=size, timeout=timeout,
                                             name="amp-tools-ledger-pg", before_open=self._migrate_first)
        self._finalizer = weakref.finalize(self, _release, self._pool)
        if not fresh:  # the pool's first ledger migrated; check again on a pooled connection
            try:
                self._run_write_sync(lambda: _migrate_steps(self.schema))
            except BaseException:
                self.close_sync()
                raise

    # -------------------------------------------------------------- setup
    def _migrate_first(self) -> None:
        """Create or migrate the schema on a connection of its own, before the pool opens."""
        try:
            conn = psycopg.Connection.connect(self.url, **self._kwargs)
        except psycopg.OperationalError as exc:
            text = " ".join(str(exc).split())
            if any(word in text for word in _MISCONFIGURED):
                raise ConfigError(f"cannot connect to the PostgreSQL ledger: {text}") from None
            raise LedgerUnavailable(f"cannot connect to the PostgreSQL ledger: {text}", hint=RETRY_HINT) from None
        with conn, conn.transaction():
            drive_sync(lambda: _migrate_steps(self.schema), lambda q: _exec_sync(conn, q))

    # -------------------------------------------------------------- transactions
    def _transact(self, factory: StepsFactory[T], deadline: float, flush: bool = True) -> T:
        """One transaction on a pooled connection, waiting for one until `deadline` (monotonic)."""
        undo: ReserveDisagreement | None = None
        follow: StepsFactory[Any] | None = None
        for attempt in (1, 2):
            with self._pool.connection(deadline) as conn:
                committing = False
                try:
                    steps = factory()
                    try:
                        first = next(steps)
                    except StopIteration as stop:
                        done: T = stop.value
                        return done
                    if first.alone:
                        # The statement commits itself. Cut off the first time, it is sent again, told so (it
                        # recognizes its own commit); cut off again, the outcome is unknown.
                        committing = attempt == 2
                        try:
                            return _alone(conn, first, steps, flush, retried=attempt == 2)
                        except ReserveDisagreement as exc:  # committed already: let the reservation go
                            undo = exc
                        except GeneralPath as exc:  # nothing written: the refusal is recorded by its own
                            follow = exc.steps
                    else:
                        # Pipeline mode: statements marked `nowait` (and BEGIN) are sent without waiting for
                        # their answer; a statement whose rows are read waits for everything before it (`sync`).
                        with conn.pipeline() as pipe, conn.transaction():
                            if not flush:  # sent with BEGIN, no round trip of its own
                                conn.execute("SET LOCAL synchronous_commit = off")
                            run = _Pipelined(conn, pipe, flush)
                            result = drive_sync(functools.partial(_resumed, first, steps), run.execute, run.batch)
                            run.send_merged()
                            committing = True  # leaving the block sends COMMIT
                        return result
                except psycopg.OperationalError as exc:
                    if not _cut_off(conn, exc):
                        raise
                    text = " ".join(str(exc).split())
                    if committing:
                        raise LedgerUnavailable(
                            f"the connection to the ledger's database was lost while committing ({text}); the "
                            "change may or may not have been saved", hint=RETRY_HINT,
                            details={"outcome": "unknown"}) from exc
                    if attempt == 2:
                        raise LedgerUnavailable(
                            f"the ledger's database cut the connection off twice ({text}); nothing was written",
                            hint=RETRY_HINT) from exc
            if follow is not None:  # on a connection of its own, as `undo`
                result_of_follow: T = self._transact(follow, deadline, flush)
                return result_of_follow
            if undo is not None:  # on a connection of its own, once this one is back in the pool
                self._transact(functools.partial(release_steps, POSTGRES, undo.entry_id, reason="ledger_disagreement",
                                                 now=self.clock.now()), deadline)
                raise undo
            # The server rolled the cut-off transaction back; after a restart the other idle
            # connections are dead too, so test them all before the one retry.
            self._pool.check()
            deadline = max(deadline, time.monotonic() + self.pool_timeout)
        raise AssertionError("unreachable")

    def _work(self, factory: StepsFactory[T], flush: bool = True) -> Callable[[float], T]:
        if self._closed:
            raise ConfigError("the ledger is closed")
        return functools.partial(self._transact, factory, flush=flush)

    async def _run_write(self, factory: StepsFactory[T], flush: bool = True) -> T:
        return await self._pool.run(self._work(factory, flush))

    async def _run_read(self, factory: StepsFactory[T]) -> T:
        return await self._pool.run(self._work(factory))

    def _run_write_sync(self, factory: StepsFactory[T], flush: bool = True) -> T:
        return self._pool.run_sync(self._work(factory, flush))

    def _run_read_sync(self, factory: StepsFactory[T]) -> T:
        return self._pool.run_sync(self._work(factory))

    # -------------------------------------------------------------- lifecycle
    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        if self._pool.release():
            await self._pool.aclose()

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _release(self._pool)

    def explain(self, sql: str, params: tuple[object, ...] = ()) -> list[str]:
        rows = self._run_read_sync(lambda: _statement_steps("EXPLAIN " + sql, params))
        return [str(r[0]) for r in rows]

    def drop_schema(self) -> None:
        """Drop this ledger's schema and everything in it (tests)."""
        if self.schema is None:
            raise ConfigError("drop_schema needs a ledger opened with schema=...")
        self._run_write_sync(lambda: _statement_steps(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE', ()))


def _release(pool: SharedPool) -> None:
    """A ledger's share of its pool (also when it is garbage-collected unclosed): the last one closes it."""
    if pool.release():
        pool.close_sync()


def _migrate_steps(schema: str | None) -> Steps[int]:
    """Create the schema if missing and migrate it, one migrator at a time across every process."""
    yield Q("SELECT pg_advisory_xact_lock(?)", (_MIGRATE_LOCK,))
    if schema is None:
        rows = yield Q("SELECT current_schema(), current_setting('search_path')")
        schema = _missing_schema(rows[0] if rows else None)
    if schema is not None:
        yield Q(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return (yield from migrate_steps(POSTGRES))


def _cut_off(conn: psycopg.Connection[Any], exc: psycopg.OperationalError) -> bool:
    """Did the server end this connection (rather than refuse one statement, e.g. a deadlock)?"""
    return conn.closed or (exc.sqlstate or "").startswith(_CUT_OFF)  # closed: also a connection lost


def _missing_schema(row: Row | None) -> str | None:
    """The first search_path schema when none of them exists yet (e.g. ``options=-csearch_path=x``)."""
    if row is None or row[0] is not None:
        return None
    first = str(row[1]).split(",")[0].strip().strip('"')
    if not _SCHEMA_RE.match(first):
        raise ConfigError(f"search_path schema {first!r} does not exist and is not a simple lower-case name")
    return first


def _rows(cur: psycopg.Cursor[Any]) -> list[Row]:
    # The result's status, not `cur.description`: that builds a Column object per column of every result.
    res = cur.pgresult
    return cur.fetchall() if res is not None and res.status == _TUPLES_OK else []


def _exec_sync(conn: psycopg.Connection[Any], query: Q) -> list[Row]:
    return _rows(conn.execute(_pg(query.sql), query.params))


_MERGE_PARAMS, _MERGE_CHARS = 50, 3800
_ANSWER_BY_RAISE = "amp_reserve"  # see `_reserve_sql`


class _Pipelined:
    """Runs one transaction's statements in pipeline mode: `nowait` writes are sent without waiting, a
    run of `merge` writes is held back and sent as one statement (``WITH w1 AS (...), ... <last>``:
    fewer statements for the client to build and the server to parse) just before the next other
    statement, and a batch is sent at once and answered together."""

    def __init__(self, conn: psycopg.Connection[Any], pipe: psycopg.Pipeline, flush: bool) -> None:
        self.conn, self.pipe, self.flush = conn, pipe, flush
        self.held: list[Q] = []

    def send_merged(self) -> None:
        held, self.held = self.held, []
        chunk: list[Q] = []
        for query in held:
            # psycopg caches the parsing of a statement up to 50 parameters and 4096 characters: stay within.
            if chunk and (sum(len(q.params) for q in chunk) + len(query.params) > _MERGE_PARAMS
                          or sum(len(q.sql) for q in chunk) + len(query.sql) > _MERGE_CHARS):
                self._send(chunk)
                chunk = []
            chunk.append(query)
        if chunk:
            self._send(chunk)

    def _send(self, held: list[Q]) -> None:
        if len(held) == 1:
            self.conn.execute(_pg(held[0].sql), held[0].params)
            return
        ctes = ", ".join(f"w{n} AS ({q.sql})" for n, q in enumerate(held[:-1]))
        params = tuple(p for q in held for p in q.params)  # placeholders in text order: the CTEs, then the last
        self.conn.execute(_pg(f"WITH {ctes} {held[-1].sql}"), params)

    def execute(self, query: Q) -> list[Row]:
        if query.merge and query.nowait:
            self.held.append(query)
            return []
        self.send_merged()
        if query.alone:  # not first: one statement of this transaction like any other
            return _answer(self.conn, query, self.flush, self.pipe)
        cur = self.conn.execute(_pg(query.sql), query.params)
        if query.nowait:
            return []
        self.pipe.sync()
        return _rows(cur)

    def batch(self, queries: tuple[Q, ...]) -> list[list[Row]]:
        """Send every statement of a batch, then wait once; each answer is read from its own cursor."""
        self.send_merged()
        cursors = [self.conn.execute(_pg(q.sql), q.params) for q in queries]
        self.pipe.sync()
        return [[] if q.nowait else _rows(cur) for q, cur in zip(queries, cursors, strict=True)]


def _resumed(first: Q, steps: Steps[T]) -> Steps[T]:
    """`steps` again, its first statement (already drawn) included."""
    query = first
    while True:
        rows = yield query
        try:
            query = steps.send(rows)
        except StopIteration as stop:
            result: T = stop.value
            return result


def _answer(conn: psycopg.Connection[Any], query: Q, flush: bool, pipe: psycopg.Pipeline | None = None,
            retried: bool = False) -> list[Row]:
    """The rows of a `Q.alone` statement; a function that answers by raising (to roll back what it
    did) raises ``P0001`` with the message ``amp_reserve`` and its answer as the detail."""
    try:
        cur = conn.execute(_pg(query.sql), (*query.params[:-2], flush, retried))
        if pipe is not None:
            pipe.sync()
        return _rows(cur)
    except psycopg.errors.RaiseException as exc:
        if exc.diag.message_primary != _ANSWER_BY_RAISE or exc.diag.message_detail is None:
            raise
        return [(exc.diag.message_detail,)]


def _alone(conn: psycopg.Connection[Any], query: Q, steps: Steps[T], flush: bool, retried: bool) -> T:
    """Run a `Q.alone` statement as its own transaction (the connection is in autocommit mode) and
    hand its rows back to `steps`, which must then finish."""
    rows = _answer(conn, query, flush, retried=retried)
    try:
        more = steps.send(rows)
    except StopIteration as stop:
        result: T = stop.value
        return result
    steps.close()
    raise AssertionError(f"a statement run alone was followed by another one ({more.sql[:40]!r})")


def _statement_steps(sql: str, params: tuple[object, ...]) -> Steps[list[Row]]:
    rows = yield Q(sql, params)
    return rows
