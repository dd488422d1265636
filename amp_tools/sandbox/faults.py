"""Fault injection: make one hop of the payment path decline, time out, or fail with a 5xx.

A fault is armed for a target hop with a mode and a count; each request through that hop
consumes one shot. ``timeout_before`` drops the request unprocessed, ``timeout_after``
processes it and then loses the answer (the caller sees a timeout while the money moved),
``http_500`` fails it unprocessed, ``decline`` makes the hop refuse it as a business outcome.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["FAULT_MODES", "FAULT_TARGETS", "FaultMode", "FaultTarget", "Faults"]

FaultTarget = Literal["merchant.startPayment", "acquirer.pay", "network.pay", "mpp.pay", "cp.applyCredential"]
FaultMode = Literal["decline", "timeout_before", "timeout_after", "http_500"]
FAULT_TARGETS: tuple[str, ...] = get_args(FaultTarget)
FAULT_MODES: tuple[str, ...] = get_args(FaultMode)


@dataclass
class _Armed:
    mode: str
    remaining: int


class Faults:
    """The armed faults of one sandbox."""

    def __init__(self) -> None:
        self._armed: dict[str, _Armed] = {}
        self._lock = threading.Lock()
        self.fired: list[tuple[str, str]] = []

    def arm(self, target: str, mode: str, count: int = 1) -> None:
        if target not in FAULT_TARGETS:
            raise ValueError(f"fault target {target!r} is unknown; expected one of {', '.join(FAULT_TARGETS)}")
        if mode not in FAULT_MODES:
            raise ValueError(f"fault mode {mode!r} is unknown; expected one of {', '.join(FAULT_MODES)}")
        if count < 1:
            raise ValueError(f"fault count {count} must be at least 1")
        with self._lock:
            self._armed[target] = _Armed(mode, count)

    def reset(self, target: str | None = None) -> None:
        with self._lock:
            if target is None:
                self._armed.clear()
            else:
                self._armed.pop(target, None)

    def take(self, target: str) -> str | None:
        """The mode to apply to this request at `target`, consuming one shot; None when unarmed."""
        with self._lock:
            armed = self._armed.get(target)
            if armed is None:
                return None
            armed.remaining -= 1
            if armed.remaining <= 0:
                del self._armed[target]
            self.fired.append((target, armed.mode))
            return armed.mode

    def armed(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {t: {"mode": a.mode, "remaining": a.remaining} for t, a in self._armed.items()}
