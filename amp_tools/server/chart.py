"""A server-rendered SVG chart of spend over time (no script, nothing from a CDN).

One bar per UTC day (the last `days` days, today on the right) of what the budget's payments
count against it, with the largest day and the period total labelled. Amounts are summed in
integer minor units and only formatted for the labels.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from html import escape

from amp_tools.clock import utc
from amp_tools.money import Money

__all__ = ["daily_totals", "spend_chart"]

_W, _H, _PAD_L, _PAD_B, _PAD_T = 640, 150, 8, 4, 6


def daily_totals(points: Iterable[tuple[datetime, int]], now: datetime, days: int) -> list[tuple[datetime, int]]:
    """(day start, minor) for each of the last `days` UTC days, oldest first."""
    today = utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=days - 1)
    sums = [0] * days
    for at, minor in points:
        index = (utc(at).replace(hour=0, minute=0, second=0, microsecond=0) - first).days
        if 0 <= index < days:
            sums[index] += minor
    return [(first + timedelta(days=i), sums[i]) for i in range(days)]


def spend_chart(points: Iterable[tuple[datetime, int]], currency: str, now: datetime, *, days: int = 30) -> str:
    """An accessible SVG bar chart of daily spend in `currency` minor units: the last `days` days, or
    fewer (at least a week) when spending began more recently, so the bars fill the chart."""
    points = list(points)
    first = min((utc(at) for at, _ in points), default=utc(now))
    days = max(7, min(days, (utc(now) - first).days + 1))
    totals = daily_totals(points, now, days)
    top = max((minor for _, minor in totals), default=0)
    total = sum(minor for _, minor in totals)
    width = (_W - _PAD_L * 2) / days
    plot_h = _H - _PAD_B - _PAD_T
    title = f"Spend per day, last {days} days: {Money(total, currency)} in total"
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" role="img" class="chart" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{_PAD_L}" y1="{_H - _PAD_B}" x2="{_W - _PAD_L}" y2="{_H - _PAD_B}" class="axis"/>']
    for i, (day, minor) in enumerate(totals):
        h = 0.0 if top == 0 else plot_h * minor / top
        x = _PAD_L + i * width
        label = f"{day:%Y-%m-%d}: {Money(minor, currency)}"
        parts.append(f'<rect x="{x + 1:.1f}" y="{_H - _PAD_B - h:.1f}" width="{max(width - 2, 1):.1f}" '
                     f'height="{h:.1f}" class="bar"><title>{escape(label)}</title></rect>')
    first, last = totals[0][0], totals[-1][0]
    parts.append("</svg>")
    # The labels are HTML under the drawing, so they stay readable however narrow the screen is.
    parts.append(f'<p class="chart-caption"><span>{first:%d %b}</span><span>max/day {escape(str(Money(top, currency)))}'
                 f" · total {escape(str(Money(total, currency)))}</span><span>{last:%d %b}</span></p>")
    return "".join(parts)
