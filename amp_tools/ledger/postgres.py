"""The PostgreSQL ledger backend (psycopg 3), for many hosts sharing one budget.

Transactions run at READ COMMITTED and serialize where money is decided: every write first
takes the budget row with ``SELECT ... FOR UPDATE`` (then the entry row, then the audit head:
one lock order, so no deadlocks). Each statement after the lock sees everything the previous
lock holder committed, so check-and-reserve is atomic across processes and hosts.

Every transaction runs in psycopg's pipeline mode: writes whose result is not read (``Q.nowait``)
are sent without waiting, so a reserve costs about 5 round trips instead of ~16.

Async calls use `psycopg.AsyncConnection`s kept in a small idle list per event loop (no pool
dependency); sync twins use one `psycopg.Connection` per thread. `schema=` puts every table in
its own PostgreSQL schema (created if missing), which tests use for isolation.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any, TypeVar

from amp_tools.clock import Clock
from amp_tools.errors import ConfigError

from ._engine import PolicyEngine
from ._sql import POSTGRES, Q, Row, Steps, StepsFactory, drive_sync
from .base import LedgerBase
from .schema import migrate_steps

try:
    import psycopg
except ImportError:  # pragma: no cover - the [postgres] extra is missing
    psycopg = None  # type: ignore[assignment]

__all__ = ["PostgresLedger"]

T = TypeVar("T")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MIGRATE_LOCK = 0x616D70  # advisory lock id: one migrator at a time


def _pg(sql: str) -> str:
    # A literal % (modulo in the bucket migration) must be doubled once psycopg sees placeholders.
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresLedger(LedgerBase):
    dialect = POSTGRES

    def __init__(self, url: str, *, clock: Clock | None = None, engine: PolicyEngine | None = None,
                 schema: str | None = None, max_idle: int = 8, connect_timeout: int = 10) -> None:
        if psycopg is None:
            raise ConfigError("the PostgreSQL ledger needs psycopg 3; install amp-tools[postgres]")
        if schema is not None and not _SCHEMA_RE.match(schema):
            raise ConfigError(f"schema {schema!r} must be a lower-case SQL identifier such as 'amp_tools'")
        super().__init__(clock=clock, engine=engine)
        self.url, self.schema = url, schema
        self._kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": connect_timeout}
        if schema is not None:
            self._kwargs["options"] = f"-c search_path={schema}"
        self._max_idle = max_idle
        self._idle: dict[asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]] = {}
        self._local = threading.local()
        self._sync_conns: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._migrate()

    # -------------------------------------------------------------- setup
    def _migrate(self) -> None:
        conn = self._sync_conn()
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
            schema = self.schema or _missing_schema(conn)
            if schema is not None:
                conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            drive_sync(lambda: migrate_steps(POSTGRES), lambda q: _exec_sync(conn, q))

    def _sync_conn(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise ConfigError("the ledger is closed")
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.Connection.connect(self.url, **self._kwargs)
            except psycopg.OperationalError as exc:
                raise ConfigError(f"cannot connect to the PostgreSQL ledger: {exc}") from exc
            self._local.conn = conn
            with self._lock:
                self._sync_conns.append(conn)
        return conn

    async def _acquire(self) -> psycopg.AsyncConnection[Any]:
        if self._closed:
            raise ConfigError("the ledger is closed")
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        try:
            return await psycopg.AsyncConnection.connect(self.url, **self._kwargs)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to the PostgreSQL ledger: {exc}") from exc

    async def _release_conn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        if self._closed or conn.closed or len(idle) >= self._max_idle or conn.info.transaction_status != 0:
            await conn.close()
        else:
            idle.append(conn)

    # -------------------------------------------------------------- transactions
    async def _run(self, factory: StepsFactory[T]) -> T:
        conn = await self._acquire()
        try:
            # Pipeline mode: statements marked `nowait` (and BEGIN) are sent without waiting for their
            # answer; a statement whose rows are read waits for everything before it (`sync`).
            async with conn.pipeline() as pipe, conn.transaction():
                gen = factory()
                try:
                    query = next(gen)
                    while True:
                        cur = await conn.execute(_pg(query.sql), query.params)
                        rows: list[Row] = []
                        if not query.nowait:
                            await pipe.sync()
                            rows = await cur.fetchall() if cur.description is not None else []
                        query = gen.send(rows)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
        finally:
            await self._release_conn(conn)

    async def _run_write(self, factory: StepsFactory[T]) -> T:
        return await self._run(factory)

    async def _run_read(self, factory: StepsFactory[T]) -> T:
        return await self._run(factory)

    def _run_write_sync(self, factory: StepsFactory[T]) -> T:
        conn = self._sync_conn()
        with conn.pipeline() as pipe, conn.transaction():  # see `_run`
            return drive_sync(factory, lambda q: _exec_pipelined(conn, pipe, q))

    def _run_read_sync(self, factory: StepsFactory[T]) -> T:
        return self._run_write_sync(factory)

    # -------------------------------------------------------------- lifecycle
    async def close(self) -> None:
        self._closed = True
        pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                await conn.close()
        self._close_sync_conns()

    def close_sync(self) -> None:
        self._closed = True
        pools, self._idle = self._idle, {}
        for conns in pools.values():
            for conn in conns:
                conn.pgconn.finish()
        self._close_sync_conns()

    def _close_sync_conns(self) -> None:
        with self._lock:
            conns, self._sync_conns = self._sync_conns, []
        for conn in conns:
            conn.close()

    def explain(self, sql: str, params: tuple[object, ...] = ()) -> list[str]:
        rows = self._run_read_sync(lambda: _explain_steps(sql, params))
        return [str(r[0]) for r in rows]

    def drop_schema(self) -> None:
        """Drop this ledger's schema and everything in it (tests)."""
        if self.schema is None:
            raise ConfigError("drop_schema needs a ledger opened with schema=...")
        conn = self._sync_conn()
        conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def _missing_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The first search_path schema when none of them exists yet (e.g. ``options=-csearch_path=x``)."""
    row = conn.execute("SELECT current_schema(), current_setting('search_path')").fetchone()
    if row is None or row[0] is not None:
        return None
    first = str(row[1]).split(",")[0].strip().strip('"')
    if not _SCHEMA_RE.match(first):
        raise ConfigError(f"search_path schema {first!r} does not exist and is not a simple lower-case name")
    return first


def _exec_sync(conn: psycopg.Connection[Any], query: Q) -> list[Row]:
    cur = conn.execute(_pg(query.sql), query.params)
    return cur.fetchall() if cur.description is not None else []


def _exec_pipelined(conn: psycopg.Connection[Any], pipe: psycopg.Pipeline, query: Q) -> list[Row]:
    cur = conn.execute(_pg(query.sql), query.params)
    if query.nowait:
        return []
    pipe.sync()
    return cur.fetchall() if cur.description is not None else []


def _explain_steps(sql: str, params: tuple[object, ...]) -> Steps[list[Row]]:
    rows = yield Q("EXPLAIN " + sql, params)
    return rows
