"""Waiting through a clock: the wall clocks wait in real time, a `ManualClock` moves itself instead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from amp_tools import clock as clock_module
from amp_tools.clock import ManualClock, OffsetClock, SystemClock, sleep

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The real sleeps asked for, recorded instead of slept."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(clock_module.asyncio, "sleep", record)
    return asked


async def test_a_manual_clock_moves_forward_instead_of_sleeping(slept: list[float]) -> None:
    clock = ManualClock(START)
    await clock.sleep(0.25)
    await sleep(clock, 4.75)
    await clock.sleep(-1)  # never backwards
    assert clock.now() == START + timedelta(seconds=5)
    assert slept == [0, 0, 0]  # it only yields to other tasks


async def test_the_wall_clocks_sleep_in_real_time(slept: list[float]) -> None:
    offset = OffsetClock()
    await SystemClock().sleep(0.25)
    await offset.sleep(0.5)
    await sleep(offset, 0.75)
    assert slept == [0.25, 0.5, 0.75]


async def test_a_clock_without_sleep_waits_in_real_time(slept: list[float]) -> None:
    class Fixed:
        def now(self) -> datetime:
            return START

    await sleep(Fixed(), 1.5)
    assert slept == [1.5]


async def test_a_manual_clock_sleep_lets_other_tasks_run() -> None:
    clock = ManualClock(START)
    seen: list[datetime] = []

    async def other() -> None:
        seen.append(clock.now())

    task = asyncio.create_task(other())
    await clock.sleep(1)
    await task
    assert seen == [START + timedelta(seconds=1)]
