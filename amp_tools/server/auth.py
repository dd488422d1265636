"""Login, sessions and CSRF for the owner's web app.

The owner's passphrase (or a token generated at start) is kept only as a salted scrypt hash
(``scrypt$n$r$p$salt$hash``, see `hash_secret`); a login compares in constant time. A session is a
random 256-bit id in an HttpOnly, SameSite=Strict cookie; the server keeps only its SHA-256, with
the session's own CSRF token and expiry. Every state-changing request must carry that CSRF token
(form field ``csrf`` or header ``X-CSRF-Token``) *and* must not come from another site (``Origin``
or ``Sec-Fetch-Site``).

Guessing stays slow and the owner can always get in: `LoginThrottle` admits a passphrase check only
after counting it, atomically (a lock around check-and-count, before scrypt runs), at most
`per_address` failures a minute from one client address and `overall` from everyone (the backstop).
A throttled owner logs in with a one-time link (`recovery`), which no throttle applies to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from amp_tools.errors import ConfigError

__all__ = ["COOKIE", "LoginThrottle", "Session", "SessionStore", "hash_secret", "verify_secret"]

COOKIE = "amp_session"
_N, _R, _P = 2**14, 8, 1
_MIN_SECRET = 12


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of the owner's passphrase, safe to keep in a config file."""
    if len(secret) < _MIN_SECRET:
        raise ConfigError(f"the inbox passphrase must be at least {_MIN_SECRET} characters long")
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """True when `secret` matches the `hash_secret` output `stored` (constant-time compare)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(secret.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def check_hash(stored: str) -> str:
    """`stored` if it has the shape `hash_secret` writes, else a `ConfigError` saying what is expected."""
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(part for part in parts):
        raise ConfigError("the inbox passphrase hash must look like scrypt$16384$8$1$<salt>$<hash> "
                          "(make one with `amp-tools serve --hash-passphrase`)")
    return stored


@dataclass
class Session:
    csrf: str
    expires: float
    user: str


class LoginThrottle:
    """How many passphrase checks may run: per client address and overall, per `window` seconds.

    `admit` counts a check before it runs (a check in flight holds its slot), so a burst of concurrent
    guesses cannot all pass the test before any of them is counted. A successful check gives its slot
    back; a failed one keeps it for the window.
    """

    def __init__(self, per_address: int = 5, overall: int = 20, window: float = 60.0,
                 now: Callable[[], float] = time.monotonic) -> None:
        if per_address < 1 or overall < per_address:
            raise ConfigError("login throttle: per_address must be at least 1 and overall at least per_address")
        self.per_address, self.overall, self.window, self._now = per_address, overall, window, now
        self._slots: list[tuple[float, str]] = []  # (when, address) of failed and in-flight checks
        self._lock = threading.Lock()

    def _live(self) -> list[tuple[float, str]]:
        cut = self._now() - self.window
        self._slots = [slot for slot in self._slots if slot[0] > cut]
        return self._slots

    def admit(self, address: str) -> tuple[float, str] | None:
        """A slot for one check from `address`, or None when the address or everyone is over the limit."""
        with self._lock:
            live = self._live()
            if len(live) >= self.overall or sum(1 for _, a in live if a == address) >= self.per_address:
                return None
            slot = (self._now(), address)
            live.append(slot)
            return slot

    def done(self, slot: tuple[float, str], ok: bool) -> None:
        with self._lock:
            if ok:
                self._slots = [s for s in self._slots if s is not slot]


class SessionStore:
    """Live sessions by the SHA-256 of their cookie value; in memory (a restart logs everyone out)."""

    def __init__(self, ttl_seconds: float = 12 * 3600, throttle: LoginThrottle | None = None) -> None:
        self.ttl = ttl_seconds
        self._sessions: dict[str, Session] = {}
        self.throttle = throttle or LoginThrottle()
        self._lock = threading.Lock()

    @staticmethod
    def _key(cookie: str) -> str:
        return hashlib.sha256(cookie.encode("utf-8")).hexdigest()

    def create(self, user: str) -> tuple[str, Session]:
        cookie = secrets.token_urlsafe(32)
        session = Session(csrf=secrets.token_urlsafe(32), expires=time.time() + self.ttl, user=user)
        with self._lock:
            now = time.time()
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires > now}
            self._sessions[self._key(cookie)] = session
        return cookie, session

    def get(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 200:
            return None
        with self._lock:
            session = self._sessions.get(self._key(cookie))
            if session is None or session.expires <= time.time():
                return None
            return session

    def drop(self, cookie: str | None) -> None:
        if cookie:
            with self._lock:
                self._sessions.pop(self._key(cookie), None)


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), (presented or "").encode())
