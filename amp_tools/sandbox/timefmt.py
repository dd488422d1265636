"""ISO-8601 times as the reference writes and reads them."""

from __future__ import annotations

from datetime import datetime

from amp_tools.clock import utc

__all__ = ["iso_z", "parse_time"]


def iso_z(value: datetime) -> str:
    """``2026-11-29T14:53:23Z`` (second precision, UTC)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> datetime:
    """An ISO-8601 time; ``Z`` accepted, a naive time is UTC. Raises ValueError with the input."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"time {text!r} is not an ISO-8601 string such as '2026-11-29T14:53:23Z'")
    raw = text.strip()
    if raw.endswith(("Z", "z")):
        raw = raw[:-1] + "+00:00"
    try:
        return utc(datetime.fromisoformat(raw))
    except ValueError:
        raise ValueError(f"time {text!r} is not ISO-8601; expected e.g. '2026-11-29T14:53:23Z'") from None
