"""Durable approval requests and single-use grants, in SQLite.

Owns the ``approvals`` table (it may live in the ledger's database file). A request moves
``pending -> approved | denied -> consumed``; a pending request past its expiry can no
longer be decided and is reported with the derived status ``expired``. `consume` hands out
a decided answer for one binding exactly once: the state change is a conditional UPDATE
inside ``BEGIN IMMEDIATE``, so two processes racing for one grant cannot both win.

Only people reach `approve` and `deny` (the CLI, a web hook); no tool calls them.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from amp_tools.approvals.request import ApprovalDecision, ApprovalRequest
from amp_tools.clock import SYSTEM_CLOCK, Clock, utc
from amp_tools.errors import AmpToolsError, NotFound

__all__ = ["ApprovalRecord", "ApprovalStateError", "ApprovalStore", "Status"]

Status = Literal["pending", "approved", "denied", "consumed", "expired"]
_STATUSES = ("pending", "approved", "denied", "consumed", "expired")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS approvals (
    id          TEXT PRIMARY KEY,
    binding     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed')),
    approved    INTEGER,
    request     TEXT NOT NULL,
    created_us  INTEGER NOT NULL,
    expires_us  INTEGER NOT NULL,
    decided_us  INTEGER,
    decided_by  TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    consumed_us INTEGER
);
CREATE INDEX IF NOT EXISTS approvals_binding ON approvals (binding, status);
"""


class ApprovalStateError(AmpToolsError, ValueError):
    """An approval cannot be decided as asked (expired, or already decided)."""

    code = "APPROVAL_STATE"


@dataclass(frozen=True)
class ApprovalRecord:
    """A stored request with its current state."""

    request: ApprovalRequest
    status: Status
    approved: bool | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str

    @property
    def id(self) -> str:
        return self.request.id

    def is_expired(self, now: datetime) -> bool:
        return self.request.is_expired(now)


def _us(value: datetime) -> int:
    delta = utc(value) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, UTC)


def _path_of(target: str | Path) -> str:
    text = str(target)
    if text.startswith("sqlite:///"):
        return text[len("sqlite:///"):]
    if text.startswith("sqlite://"):
        return text[len("sqlite://"):] or ":memory:"
    return text


class ApprovalStore:
    """Approval requests and grants in a SQLite file (WAL), safe across threads and processes."""

    def __init__(self, path: str | Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = _path_of(path)
        self.clock = clock
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # One connection per store guarded by a lock; other processes coordinate via SQLite locks.
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        with self._lock:
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ rows
    _COLUMNS = "request, status, approved, decided_by, decided_us, reason"

    def _record(self, row: tuple[str, str, int | None, str | None, int | None, str],
                now: datetime | None = None) -> ApprovalRecord:
        request = ApprovalRequest.from_public(json.loads(row[0]))
        status: Status = row[1]  # type: ignore[assignment]
        if status == "pending" and request.is_expired(now if now is not None else self.clock.now()):
            status = "expired"
        return ApprovalRecord(request=request, status=status,
                              approved=None if row[2] is None else bool(row[2]),
                              decided_by=row[3], decided_at=None if row[4] is None else _from_us(row[4]),
                              reason=row[5])

    # ------------------------------------------------------------------ sync API
    def create(self, request: ApprovalRequest) -> ApprovalRecord:
        """Store a new pending request (its id must be new)."""
        with self._tx() as conn:
            return self._insert(conn, request)

    def _insert(self, conn: sqlite3.Connection, request: ApprovalRequest) -> ApprovalRecord:
        try:
            conn.execute(
                "INSERT INTO approvals (id, binding, status, request, created_us, expires_us) "
                "VALUES (?, ?, 'pending', ?, ?, ?)",
                (request.id, request.binding, json.dumps(request.to_public(), sort_keys=True),
                 _us(request.created_at), _us(request.expires_at)))
        except sqlite3.IntegrityError:
            raise ApprovalStateError(f"approval {request.id} already exists") from None
        return ApprovalRecord(request, "pending", None, None, None, "")

    def open_or_create(self, request: ApprovalRequest, now: datetime | None = None) -> ApprovalRecord:
        """The unexpired pending request with the same binding, or `request` stored as new."""
        at = _us(now if now is not None else self.clock.now())
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {self._COLUMNS} FROM approvals WHERE binding = ? AND status = 'pending' "
                "AND expires_us > ? ORDER BY created_us LIMIT 1", (request.binding, at)).fetchone()
            if row is not None:
                return self._record(row, now)
            return self._insert(conn, request)

    def get(self, approval_id: str) -> ApprovalRecord:
        with self._lock:
            row = self._conn.execute(f"SELECT {self._COLUMNS} FROM approvals WHERE id = ?",
                                     (approval_id,)).fetchone()
        if row is None:
            raise NotFound(f"approval {approval_id!r} does not exist",
                           hint="List approvals with `amp-tools approvals list`.")
        return self._record(row)

    def list(self, status: Status | None = None) -> list[ApprovalRecord]:
        """Stored requests, newest first. `status` filters; ``pending`` means still answerable and
        ``expired`` means pending past its expiry (judged by the store's clock)."""
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(_STATUSES)}")
        now = self.clock.now()
        query = f"SELECT {self._COLUMNS} FROM approvals"
        args: tuple[str | int, ...] = ()
        if status == "pending":
            query += " WHERE status = 'pending' AND expires_us > ?"
            args = (_us(now),)
        elif status == "expired":
            query += " WHERE status = 'pending' AND expires_us <= ?"
            args = (_us(now),)
        elif status is not None:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created_us DESC, id", args).fetchall()
        return [self._record(row, now) for row in rows]

    def approve(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        """A person says yes. Raises `ApprovalStateError` if expired or already decided."""
        return self._decide(approval_id, True, by, "", now)

    def deny(self, approval_id: str, by: str, reason: str = "", *, now: datetime | None = None) -> ApprovalRecord:
        """A person says no."""
        return self._decide(approval_id, False, by, reason, now)

    def _decide(self, approval_id: str, approved: bool, by: str, reason: str,
                now: datetime | None) -> ApprovalRecord:
        if not by.strip():
            raise ValueError("an approval decision needs the name of the person deciding (by=...)")
        at = _us(now if now is not None else self.clock.now())
        status = "approved" if approved else "denied"
        with self._tx() as conn:
            row = conn.execute("SELECT status, expires_us FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            if row is None:
                raise NotFound(f"approval {approval_id!r} does not exist",
                               hint="List approvals with `amp-tools approvals list`.")
            if row[0] != "pending":
                raise ApprovalStateError(f"approval {approval_id} is already {row[0]}; it cannot be decided again")
            if row[1] <= at:
                raise ApprovalStateError(f"approval {approval_id} expired at {_from_us(row[1]).isoformat()}; "
                                         "the agent must ask again for a new approval")
            conn.execute("UPDATE approvals SET status = ?, approved = ?, decided_us = ?, decided_by = ?, reason = ? "
                         "WHERE id = ? AND status = 'pending'",
                         (status, int(approved), at, by.strip(), reason, approval_id))
        return self.get(approval_id)

    def consume(self, binding: str, now: datetime | None = None) -> ApprovalDecision | None:
        """Take the decided, unexpired answer for `binding`, once. None when there is none.

        An approval (or a denial) is handed out at most once, even across processes.
        """
        at = _us(now if now is not None else self.clock.now())
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id, approved, decided_by, reason FROM approvals WHERE binding = ? "
                "AND status IN ('approved', 'denied') AND expires_us > ? ORDER BY decided_us LIMIT 1",
                (binding, at)).fetchone()
            if row is None:
                return None
            cursor = conn.execute(
                "UPDATE approvals SET status = 'consumed', consumed_us = ? "
                "WHERE id = ? AND status IN ('approved', 'denied')", (at, row[0]))
            if cursor.rowcount != 1:
                return None
        return ApprovalDecision(approved=bool(row[1]), reason=row[3] or "", approver=row[2] or "")

    # ------------------------------------------------------------------ async API
    async def acreate(self, request: ApprovalRequest) -> ApprovalRecord:
        return await asyncio.to_thread(self.create, request)

    async def aopen_or_create(self, request: ApprovalRequest, now: datetime | None = None) -> ApprovalRecord:
        return await asyncio.to_thread(self.open_or_create, request, now)

    async def aget(self, approval_id: str) -> ApprovalRecord:
        return await asyncio.to_thread(self.get, approval_id)

    async def alist(self, status: Status | None = None) -> builtins.list[ApprovalRecord]:
        return await asyncio.to_thread(self.list, status)

    async def aapprove(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        return await asyncio.to_thread(lambda: self.approve(approval_id, by, now=now))

    async def adeny(self, approval_id: str, by: str, reason: str = "", *,
                    now: datetime | None = None) -> ApprovalRecord:
        return await asyncio.to_thread(lambda: self.deny(approval_id, by, reason, now=now))

    async def aconsume(self, binding: str, now: datetime | None = None) -> ApprovalDecision | None:
        return await asyncio.to_thread(self.consume, binding, now)
