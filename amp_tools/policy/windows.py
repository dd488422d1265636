"""Time windows of a budget policy: pure arithmetic, no I/O.

Owns three things:

* duration parsing for rolling windows and velocity limits (``"90s"``, ``"10m"``, ``"1h"``,
  ``"1d"``, ``"1w"``, and sums such as ``"1h30m"``);
* the start of a *calendar* window (hour, day, week, month) in the policy's IANA timezone,
  returned as an aware UTC datetime. Weeks start on Monday (ISO 8601);
* the start of a *rolling* window: ``now - length``. A rolling hour is 1 hour, a day 24
  hours, a week 7 days and a month 30 days.

Across a daylight-saving change a calendar start is the first instant of the local period:
when local midnight does not exist (the clocks jump over it) the day starts at the jump.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "PERIODS",
    "ROLLING_LENGTH",
    "Mode",
    "Period",
    "calendar_start",
    "format_duration",
    "parse_duration",
    "resolve_timezone",
    "rolling_start",
    "window_start",
]

Period = Literal["hour", "day", "week", "month"]
Mode = Literal["calendar", "rolling"]

#: The periods in the order rules are checked and reported.
PERIODS: tuple[Period, ...] = ("hour", "day", "week", "month")

#: The length of each rolling window.
ROLLING_LENGTH: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
}

_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PART = re.compile(r"([0-9]+)([smhdw])")
_WHOLE = re.compile(r"^(?:[0-9]+[smhdw])+$")
_MAX_DURATION = timedelta(days=3660)  # ten years: anything longer is a typo, not a window


def parse_duration(text: object) -> timedelta:
    """Parse ``"90s"``, ``"10m"``, ``"1h"``, ``"1d"``, ``"1w"`` or a sum like ``"1h30m"``.

    Raises `ValueError` with a message saying what is expected.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration {text!r} is not a string; expected a duration such as '10m', '1h' or '1d'")
    compact = text.strip().lower().replace(" ", "")
    if not _WHOLE.match(compact):
        raise ValueError(f"duration {text!r} is not understood; expected a number followed by s, m, h, d or w, "
                         "such as '90s', '10m', '1h', '1d', '1w' or '1h30m'")
    total = timedelta(0)
    for number, unit in _PART.findall(compact):
        total += int(number) * _UNITS[unit]
    if total <= timedelta(0):
        raise ValueError(f"duration {text!r} is zero; expected a positive duration such as '1h'")
    if total > _MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than ten years; expected a window such as '1d' or '4w'")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest spelling in the units above (``timedelta(minutes=90)`` -> ``'1h30m'``)."""
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "0s"
    out = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


def resolve_timezone(name: str) -> tzinfo:
    """An IANA timezone by name (``"UTC"``, ``"Asia/Singapore"``); `ValueError` if unknown."""
    if name.strip().upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {name!r} is not an IANA timezone name; expected a name such as "
                         "'UTC', 'Asia/Singapore' or 'America/New_York'") from None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"datetime {now.isoformat()} is naive; expected an aware datetime")
    return now


def calendar_start(period: Period, now: datetime, tz: tzinfo) -> datetime:
    """The start of the calendar `period` containing `now`, in `tz`, as an aware UTC datetime."""
    local = _aware(now).astimezone(tz)
    if period == "hour":
        # replace() keeps `fold`, so inside a repeated hour the start is that same occurrence.
        start = local.replace(minute=0, second=0, microsecond=0)
    elif period == "day":
        start = datetime(local.year, local.month, local.day, tzinfo=tz)
    elif period == "week":
        monday = local.date() - timedelta(days=local.weekday())
        start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    elif period == "month":
        start = datetime(local.year, local.month, 1, tzinfo=tz)
    else:
        raise ValueError(f"period {period!r} is not one of {', '.join(PERIODS)}")
    result = start.astimezone(UTC)
    # A local wall time inside a DST gap maps to an instant after the jump; never later than now.
    return min(result, now.astimezone(UTC))


def rolling_start(now: datetime, length: timedelta) -> datetime:
    """The start of a rolling window of `length` ending at `now` (aware UTC)."""
    return _aware(now).astimezone(UTC) - length


def window_start(period: Period, mode: Mode, now: datetime, tz: tzinfo) -> datetime:
    """The start of the hour/day/week/month window containing `now`, calendar or rolling."""
    if mode == "calendar":
        return calendar_start(period, now, tz)
    return rolling_start(now, ROLLING_LENGTH[period])
