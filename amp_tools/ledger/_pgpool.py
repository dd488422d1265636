"""The PostgreSQL ledger's connection pool: bounded, and shared by every thread and event loop.

psycopg's async connections, and `psycopg_pool.AsyncConnectionPool` with them, belong to the event
loop that made them; but a ledger is called from many loops: the application's, and the short-lived
loops that sync adapters start for each tool call in worker threads. So the pool lives on one
private event loop in a daemon thread, and every transaction, async or sync, runs there: callers
hand it a coroutine and wait for the answer (async callers without blocking their own loop). One
pool gives one bound: never more than `size` server connections, whatever the number of loops,
threads and tasks using it. Ledgers opened in one process for the same database, schema and pool
settings share one pool (`LoopPool.acquire`), so a toolkit per user session does not multiply
connections; the last one closed closes the pool.

A transaction waits up to `timeout` seconds for a connection, then fails with `LedgerBusy` (every
connection stayed in use) or `LedgerUnavailable` (the server refused new connections meanwhile):
both are `ToolError`s, shown to the model like any other tool failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from amp_tools.errors import ConfigError, LedgerBusy, LedgerUnavailable

__all__ = ["DEFAULT_POOL_SIZE", "DEFAULT_POOL_TIMEOUT", "POOL_SIZE_ENV", "POOL_TIMEOUT_ENV", "RETRY_HINT",
           "LoopPool", "pool_settings"]

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
    """The latest failed and successful connection attempts (the pool connects in the background,
    so a waiting caller never sees the server's answer itself)."""

    def __init__(self) -> None:
        self.ok_at = self.failed_at = -math.inf
        self.error = ""

    def failing(self) -> str | None:
        """The server's last refusal, while no connection attempt has succeeded since."""
        if self.failed_at > self.ok_at and time.monotonic() - self.failed_at < _FAILURE_MEMORY:
            return self.error
        return None


def _connection_class(health: _Health) -> type[psycopg.AsyncConnection[Any]]:
    class LedgerConnection(psycopg.AsyncConnection[Any]):
        @classmethod
        async def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
            try:
                conn = await super().connect(conninfo, **kwargs)
            except psycopg.OperationalError as exc:
                health.error, health.failed_at = " ".join(str(exc).split()), time.monotonic()
                raise
            health.ok_at = time.monotonic()
            return conn

    return LedgerConnection


_SHARED: dict[tuple[Any, ...], LoopPool] = {}
_SHARED_LOCK = threading.RLock()  # re-entrant: a garbage-collected ledger may release while one is acquired


class LoopPool:
    """At most `size` connections on a private event loop; `run` / `run_sync` execute work there."""

    @classmethod
    def acquire(cls, conninfo: str, kwargs: dict[str, Any], *, size: int, timeout: float, name: str,
                before_open: Callable[[], None]) -> tuple[LoopPool, bool]:
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
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            conninfo, connection_class=_connection_class(self._health), kwargs=kwargs, min_size=1, max_size=size,
            timeout=timeout, name=name, open=False)
        self._pool = pool
        try:
            self.run_sync(pool.open(wait=False))
        except BaseException:
            _shutdown(self._loop, self._thread, pool, self._pid)
            raise
        # A pool dropped without close() must not leave its thread and connections behind.
        self._finalizer = weakref.finalize(self, _shutdown, self._loop, self._thread, pool, self._pid)

    # -------------------------------------------------------------- running work on the pool's loop
    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Await `work` on the pool's loop from any other loop; cancelling the caller cancels it."""
        self._check_usable(work)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    def run_sync(self, work: Coroutine[Any, Any, T]) -> T:
        """Block this thread until `work` has run on the pool's loop."""
        if threading.current_thread() is self._thread:
            work.close()
            raise RuntimeError("a sync ledger call cannot run on the ledger's own event loop")
        self._check_usable(work)
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: roll the transaction back too
            raise

    def _check_usable(self, work: Coroutine[Any, Any, Any]) -> None:
        if self._closed:
            work.close()
            raise ConfigError("the ledger is closed")
        if os.getpid() != self._pid:
            # The pool's thread did not survive fork(); its sockets belong to the parent.
            work.close()
            raise ConfigError("a PostgreSQL ledger cannot be used across fork(); open a new ledger in the child "
                              "process")

    # -------------------------------------------------------------- on the pool's loop
    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one transaction; it goes back to the pool (or is replaced, if broken) after."""
        try:
            conn = await self._pool.getconn(timeout=self.timeout)
        except PoolTimeout:
            raise self._timeout_error() from None
        except PoolClosed:
            raise ConfigError("the ledger is closed") from None
        try:
            yield conn
        finally:
            await self._pool.putconn(conn)

    async def check(self) -> None:
        """Test every idle connection and replace the dead ones (after the server cut one off)."""
        await self._pool.check()

    def _timeout_error(self) -> LedgerUnavailable:
        refusal = self._health.failing()
        if refusal is not None:
            return LedgerUnavailable(
                f"the ledger's PostgreSQL server refused new connections for {self.timeout:g} s ({refusal}); "
                "nothing was written", hint=RETRY_HINT, details={"pool_size": self.size})
        return LedgerBusy(
            f"all {self.size} connections of the ledger's pool stayed in use for {self.timeout:g} s; "
            "nothing was written", hint=RETRY_HINT,
            details={"pool_size": self.size, "pool_timeout": self.timeout})

    # -------------------------------------------------------------- lifecycle
    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        if os.getpid() != self._pid:  # a forked child leaves the parent's pool alone
            return
        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._pool.close(), self._loop))
        finally:
            await asyncio.to_thread(_stop, self._loop, self._thread)

    def close_sync(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        _shutdown(self._loop, self._thread, self._pool, self._pid)


def _shutdown(loop: asyncio.AbstractEventLoop, thread: threading.Thread, pool: AsyncConnectionPool[Any],
              pid: int) -> None:
    if loop.is_closed() or os.getpid() != pid:  # a forked child leaves the parent's pool alone
        return
    if thread.is_alive() and threading.current_thread() is not thread:
        # Best effort: if closing fails, the server drops the sockets of a gone client anyway.
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(pool.close(), loop).result(timeout=10)
    _stop(loop, thread)


def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    if threading.current_thread() is not thread:
        thread.join(timeout=10)
        if not thread.is_alive():
            loop.close()
