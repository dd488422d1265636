"""Window arithmetic: calendar starts in the policy timezone, rolling starts, durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amp_tools.policy.windows import (
    ROLLING_LENGTH,
    calendar_start,
    format_duration,
    parse_duration,
    resolve_timezone,
    rolling_start,
    window_start,
)

ZONES = ["UTC", "Asia/Singapore", "America/New_York", "Europe/London", "Asia/Kathmandu",
         "Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham"]
MAX_LEN = {"hour": timedelta(hours=1), "day": timedelta(hours=25), "week": timedelta(days=7, hours=1),
           "month": timedelta(days=31, hours=1)}

instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2060, 1, 1),
                        timezones=st.just(UTC))


def _is_transition(instant: datetime, tz: ZoneInfo) -> bool:
    before = (instant - timedelta(microseconds=1)).astimezone(tz).utcoffset()
    return before != instant.astimezone(tz).utcoffset()


@settings(max_examples=300, deadline=None)
@given(now=instants, zone=st.sampled_from(ZONES), period=st.sampled_from(["hour", "day", "week", "month"]))
def test_calendar_start_is_aligned_not_after_now_and_utc(now: datetime, zone: str, period: str) -> None:
    tz = resolve_timezone(zone)
    start = calendar_start(period, now, tz)  # type: ignore[arg-type]
    assert start.tzinfo is UTC
    assert start <= now
    assert now - start < MAX_LEN[period]
    local = start.astimezone(tz)
    aligned = local.minute == 0 and local.second == 0 and local.microsecond == 0
    if period in ("day", "week", "month"):
        aligned = aligned and local.hour == 0
    if period == "week":
        aligned = aligned and local.weekday() == 0
    if period == "month":
        aligned = aligned and local.day == 1
    # Where local midnight (or the hour) does not exist, the window starts at the clock change.
    assert aligned or _is_transition(start, tz)  # type: ignore[arg-type]
    # The start belongs to the same local period as now: nothing between them crosses a boundary.
    assert calendar_start(period, start, tz) == start  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(now=instants, seconds=st.integers(min_value=1, max_value=400 * 86400))
def test_rolling_start_is_now_minus_length(now: datetime, seconds: int) -> None:
    length = timedelta(seconds=seconds)
    assert rolling_start(now, length) == now - length
    assert window_start("day", "rolling", now, UTC) == now - ROLLING_LENGTH["day"]


def test_calendar_examples_in_singapore() -> None:
    tz = ZoneInfo("Asia/Singapore")
    now = datetime(2025, 6, 4, 17, 30, tzinfo=UTC)  # Thursday 01:30 on 5 June in Singapore
    assert calendar_start("hour", now, tz) == datetime(2025, 6, 4, 17, 0, tzinfo=UTC)
    assert calendar_start("day", now, tz) == datetime(2025, 6, 4, 16, 0, tzinfo=UTC)
    assert calendar_start("week", now, tz) == datetime(2025, 6, 1, 16, 0, tzinfo=UTC)  # Monday 2 June 00:00 SGT
    assert calendar_start("month", now, tz) == datetime(2025, 5, 31, 16, 0, tzinfo=UTC)


def test_weeks_start_on_monday_even_on_sunday_night() -> None:
    sunday = datetime(2025, 6, 8, 23, 59, tzinfo=UTC)
    assert calendar_start("week", sunday, UTC) == datetime(2025, 6, 2, tzinfo=UTC)
    assert calendar_start("week", datetime(2025, 6, 9, tzinfo=UTC), UTC) == datetime(2025, 6, 9, tzinfo=UTC)


def test_new_york_day_across_dst_change_is_23_hours() -> None:
    tz = ZoneInfo("America/New_York")
    now = datetime(2025, 3, 9, 20, 0, tzinfo=UTC)  # 16:00 EDT on the spring-forward day
    assert calendar_start("day", now, tz) == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)  # midnight EST


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        calendar_start("day", datetime(2025, 1, 1), UTC)


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("10m", timedelta(minutes=10)), ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)), ("1w", timedelta(weeks=1)), ("1h30m", timedelta(minutes=90)),
    (" 2D ", timedelta(days=2)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("", "not understood"), ("10", "not understood"), ("1.5h", "not understood"), ("-1h", "not understood"),
    ("0m", "zero"), ("1y", "not understood"), ("99999w", "ten years"), (60, "not a string"),
])
def test_parse_duration_refusals(text: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


def test_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="IANA"):
        resolve_timezone("Mars/Olympus")
