"""Time for everything that expires: an injectable clock, always timezone-aware UTC.

Ledger windows, approval expiry, quote expiry and the sandbox's token lifetimes all read
time through a `Clock`, so tests and the sandbox can move time forward deterministically.
Waiting goes through the clock too (`sleep`): the wall clocks wait in real time, a `ManualClock`
moves itself forward instead, so a toolkit polling a wallet on a test's clock never really sleeps.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "OffsetClock", "SystemClock", "sleep", "utc"]


def utc(value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime; a naive value is taken to be UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


async def sleep(clock: Clock, seconds: float) -> None:
    """Wait `seconds` as `clock` counts them: its own `sleep` when it has one, else real time."""
    own = getattr(clock, "sleep", None)
    if own is not None:
        await own(seconds)
    else:
        await asyncio.sleep(seconds)


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """A clock that only moves when told to (tests, the sandbox's /_admin/advanceTime)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start is not None else datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds, **kwargs)
            return self._now

    def set(self, when: datetime) -> None:
        with self._lock:
            self._now = utc(when)

    async def sleep(self, seconds: float) -> None:
        """Move this clock forward by `seconds` at once; other tasks get their turn, nobody really waits."""
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


class OffsetClock:
    """The wall clock shifted by an adjustable offset (the served sandbox moves time this way)."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float = 0, **kwargs: float) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds, **kwargs)
        return self.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # the wall clock: time passes for real


SYSTEM_CLOCK = SystemClock()
