"""The PostgreSQL ledger's connection pool: bounded, and shared by every thread and event loop.

One `psycopg_pool.ConnectionPool` (sync connections, thread-safe) serves both calling styles. Sync
twins take a connection in the calling thread, as before. The async API runs each transaction on an
executor thread and awaits it: psycopg's async connections (and `AsyncConnectionPool`) belong to
the event loop that made them, but a ledger is called from many loops (the application's, and the
short-lived loops that sync adapters start for each tool call in worker threads), and sync
connections behind an executor are bound to none. (Measured against async connections on a private
loop, this also costs less CPU per payment on both paths.) One pool gives one
bound: never more than `size` server connections, whatever the number of loops, threads and tasks.
Ledgers opened in one process for the same database, schema and pool settings share one pool
(`SharedPool.acquire`), so a toolkit per user session does not multiply connections; the last one
closed closes the pool. Like the SQLite ledger's executor, a transaction already handed to a thread
finishes (commits or rolls back) even if its awaiting task is cancelled.

A transaction waits at most `timeout` seconds from the call (queueing for a thread included) for a
connection, then fails with `LedgerBusy` (every connection stayed in use) or `LedgerUnavailable`
(the server refused new connections meanwhile): both are `ToolError`s, shown to the model like any
other tool failure.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Self, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

from amp_tools.errors import ConfigError, LedgerBusy, LedgerUnavailable

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_POOL_TIMEOUT", "POOL_SIZE_ENV", "POOL_TIMEOUT_ENV", "RETRY_HINT",
           "SharedPool", "pool_settings"]

T = TypeVar("T")

DEFAULT_POOL_SIZE = 4
DEFAULT_POOL_TIMEOUT = 10.0
POOL_SIZE_ENV = "AMP_TOOLS_LEDGER_POOL_SIZE"
POOL_TIMEOUT_ENV = "AMP_TOOLS_LEDGER_POOL_TIMEOUT"
RETRY_HINT = "Wait a few seconds and try the same call again."
#: A failed connection attempt older than this no longer explains a timeout (the pool gives up
#: reconnecting after psycopg_pool's default `reconnect_timeout`, 5 minutes).
_FAILURE_MEMORY = 300.0


def pool_settings(size: int | None, timeout: float | None) -> tuple[int, float]:
    """The pool size and wait: the arguments, else the environment, else 4 connections and 10 s."""
    if size is None:
        raw = os.environ.get(POOL_SIZE_ENV, "").strip()
        size = _parse_env(POOL_SIZE_ENV, raw, int) if raw else DEFAULT_POOL_SIZE
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000:
        raise ConfigError(f"pool_size {size!r} must be a whole number of connections from 1 to 1000 "
                          f"(per process; set it with pool_size= or {POOL_SIZE_ENV})")
    if timeout is None:
        raw = os.environ.get(POOL_TIMEOUT_ENV, "").strip()
        timeout = _parse_env(POOL_TIMEOUT_ENV, raw, float) if raw else DEFAULT_POOL_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"pool_timeout {timeout!r} must be a positive number of seconds to wait for a free "
                          f"connection (set it with pool_timeout= or {POOL_TIMEOUT_ENV})")
    return size, float(timeout)


def _parse_env(name: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        expected = "a whole number such as 4" if kind is int else "a number of seconds such as 10"
        raise ConfigError(f"{name}={raw!r} is not {expected}") from None


class _Health:
    """The pool's live connections and its latest connection attempts (the pool connects in the
    background, so a waiting caller never sees the server's answer itself)."""

    def __init__(self) -> None:
        self.ok_at = self.failed_at = -math.inf
        self.error = ""
        self._conns: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
        self._lock = threading.Lock()

    def opened(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            self._conns.add(conn)
            self.ok_at = time.monotonic()

    def refused(self, exc: Exception) -> None:
        with self._lock:
            self.error, self.failed_at = " ".join(str(exc).split()), time.monotonic()

    def live(self) -> int:
        """Connections the server still holds for this pool (idle or in use)."""
        with self._lock:
            conns = list(self._conns)
        return sum(1 for conn in conns if not conn.closed)  # closed also when the server cut it off

    def refusal(self) -> str | None:
        """The server's latest refusal of a new connection, if recent."""
        if time.monotonic() - self.failed_at < _FAILURE_MEMORY:
            return self.error
        return None


def _connection_class(health: _Health) -> type[psycopg.Connection[Any]]:
    class LedgerConnection(psycopg.Connection[Any]):
        @classmethod
        def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                health.refused(exc)
                raise
            health.opened(conn)
            return conn

    return LedgerConnection


_SHARED: dict[tuple[Any, ...], SharedPool] = {}
_SHARED_LOCK = threading.RLock()  # re-entrant: a garbage-collected ledger may release while one is acquired


class SharedPool:
    """At most `size` connections; `run` (async) and `run_sync` execute a transaction function with them."""

    @classmethod
    def acquire(cls, conninfo: str, kwargs: dict[str, Any], *, size: int, timeout: float, name: str,
                before_open: Callable[[], None]) -> tuple[SharedPool, bool]:
        """This process's pool for these settings, and whether it is new; pair with `release`.

        `before_open` runs only when the pool does not exist yet, before it opens (the ledger migrates
        its schema there, on a connection of its own, so opening never needs more than `size`)."""
        key = (os.getpid(), conninfo, tuple(sorted(kwargs.items())), size, timeout)
        with _SHARED_LOCK:
            pool = _SHARED.get(key)
            fresh = pool is None or pool._closed
            if pool is None or pool._closed:
                before_open()
                pool = _SHARED[key] = cls(conninfo, kwargs, size=size, timeout=timeout, name=name)
                pool._key = key
            pool._users += 1
            return pool, fresh

    def release(self) -> bool:
        """One user fewer; True when it was the last (the caller then closes the pool)."""
        with _SHARED_LOCK:
            self._users -= 1
            if self._users > 0:
                return False
            if _SHARED.get(self._key) is self:
                del _SHARED[self._key]
            return True

    def __init__(self, conninfo: str, kwargs: dict[str, Any], *, size: int, timeout: float, name: str) -> None:
        self.size, self.timeout, self.name = size, timeout, name
        self._health = _Health()
        self._closed = False
        self._users = 0
        self._key: tuple[Any, ...] = ()
        self._pid = os.getpid()
        pool: ConnectionPool[Any] = ConnectionPool(
            conninfo, connection_class=_connection_class(self._health), kwargs=kwargs, min_size=1, max_size=size,
            timeout=timeout, name=name, open=False)
        pool.open(wait=False)
        self._pool = pool
        # Async callers wait for a connection in these threads, where `timeout` is enforced by the pool;
        # beyond that many at once, they queue for a thread (`run` counts that wait in the same deadline).
        self._executor = ThreadPoolExecutor(max_workers=max(32, 4 * size), thread_name_prefix=name)
        # A pool dropped without close() must not leave its threads and connections behind.
        self._finalizer = weakref.finalize(self, _shutdown, pool, self._executor, self._pid)

    # -------------------------------------------------------------- running transactions
    async def run(self, work: Callable[[float], T]) -> T:
        """Run `work(deadline)` on the pool's executor without blocking the caller's event loop."""
        self._check_usable()
        deadline = time.monotonic() + self.timeout
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, deadline)

    def run_sync(self, work: Callable[[float], T]) -> T:
        """Run `work(deadline)` in this thread."""
        self._check_usable()
        return work(time.monotonic() + self.timeout)

    def _check_usable(self) -> None:
        if self._closed:
            raise ConfigError("the ledger is closed")
        if os.getpid() != self._pid:
            # The pool's threads did not survive fork(); its sockets belong to the parent.
            raise ConfigError("a PostgreSQL ledger cannot be used across fork(); open a new ledger in the child "
                              "process")

    @contextmanager
    def connection(self, deadline: float) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one transaction, waited for until `deadline` (monotonic); it goes back to the
        pool after (or is replaced, if the server cut it off)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._timeout_error()
        try:
            conn = self._pool.getconn(timeout=remaining)
        except PoolTimeout:
            raise self._timeout_error() from None
        except PoolClosed:
            raise ConfigError("the ledger is closed") from None
        try:
            yield conn
        finally:
            self._pool.putconn(conn)

    def check(self) -> None:
        """Test every idle connection and replace the dead ones (after the server cut one off)."""
        self._pool.check()

    def _timeout_error(self) -> LedgerUnavailable:
        live = self._health.live()
        if live >= self.size:
            return LedgerBusy(
                f"all {self.size} connections of the ledger's pool stayed in use for {self.timeout:g} s; "
                "nothing was written", hint=RETRY_HINT,
                details={"pool_size": self.size, "pool_timeout": self.timeout})
        # Fewer connections than allowed, and none free: the pool could not open another in time.
        refusal = self._health.refusal()
        why = f"refused new connections ({refusal})" if refusal else "did not accept a new connection"
        return LedgerUnavailable(
            f"the ledger's PostgreSQL server {why} for {self.timeout:g} s while the pool held {live} of "
            f"{self.size}; nothing was written", hint=RETRY_HINT, details={"pool_size": self.size})

    # -------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _shutdown(self._pool, self._executor, self._pid)


def _shutdown(pool: ConnectionPool[Any], executor: ThreadPoolExecutor, pid: int) -> None:
    if os.getpid() != pid:  # a forked child leaves the parent's pool alone
        return
    pool.close()  # first: a transaction still waiting for a connection then fails at once
    executor.shutdown(wait=True)
