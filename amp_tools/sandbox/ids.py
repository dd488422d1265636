"""Identifier formats of the sandbox, as the reference services spell them.

One `IdFactory` per sandbox. With a seed every identifier sequence is reproducible, which
keeps test failures readable; without one the ids come from the OS's randomness.
"""

from __future__ import annotations

import random
import secrets
import threading
from datetime import datetime

__all__ = ["IdFactory"]


class IdFactory:
    """Mints cps-, 32-hex, CKO-, PR-, pay- and CGCP payment-token identifiers."""

    CGCP_PREFIX = "28166623"

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed) if seed is not None else None
        self._lock = threading.Lock()

    def _hex(self, n: int) -> str:
        if self._rng is None:
            return secrets.token_hex((n + 1) // 2)[:n]
        with self._lock:
            return f"{self._rng.getrandbits(4 * n):0{n}x}"

    def hex32(self) -> str:
        """tokenId, A+ session id, mandateId, acquirer paymentId, MPP debit ids."""
        return self._hex(32)

    def cp_session(self) -> str:
        return f"cps-{self._hex(12)}"

    def mpp_auth(self) -> str:
        return f"mpp-auth-{self._hex(8)}"

    def checkout(self) -> str:
        return f"CKO-{self._hex(8).upper()}"

    def quote(self) -> str:
        return f"QT-{self._hex(8).upper()}"

    def fx_quote(self) -> str:
        return f"FXQ-{self._hex(16).upper()}"

    def refund(self) -> str:
        return f"RF-{self._hex(8).upper()}"

    def payment_request(self) -> str:
        return f"PR-{self._hex(32)}"

    def payment(self, at: datetime) -> str:
        return f"pay-{at.strftime('%Y%m%d%H%M%S')}-{self._hex(8)}"

    def payment_token(self) -> str:
        """CGCP: '28' network, '1' version, '666' institution, '23' AMP business type, 32 hex payload."""
        return self.CGCP_PREFIX + self._hex(32)
