"""The webhook outbox: approval notifications owed to an endpoint, in the ledger's own database.

Owns the statements over ``webhook_outbox`` (schema version 6). A row is one notification of one
approval to one endpoint: its body (what a person reads; never a secret), the endpoint's host (for
people) and ``dest``, a keyed hash of the endpoint's URL (so a worker finds its own rows without the
URL, which may carry a secret path or topic, ever being stored). A row moves
``pending -> delivered | failed``; while pending, ``next_us`` says when it is due and ``lease_us``
keeps a second worker off a delivery in flight. `claim_steps` counts the attempt before it is made,
so a worker killed mid-attempt still moves the delivery towards its limit.

The final outcome of each delivery (delivered, or failed and why) goes to the audit trail with the
host only. The console and ``amp-tools approvals deliveries`` list rows through `list_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from amp_tools.ledger._sql import Dialect, Q, Row, Steps, from_us, to_us
from amp_tools.ledger.audit import append_steps

__all__ = ["Delivery", "DeliveryStatus", "claim_steps", "enqueue_steps", "finish_steps", "list_steps",
           "next_due_steps"]

DeliveryStatus = Literal["pending", "delivered", "failed"]
_COLUMNS = ("id, approval_id, budget_id, host, format, body, status, attempts, next_us, created_us, updated_us, "
            "http_status, error")


@dataclass(frozen=True)
class Delivery:
    """One notification of one approval to one endpoint, and how its delivery stands."""

    id: int
    approval_id: str
    budget_id: str
    host: str
    format: str
    body: str
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    created_at: datetime
    updated_at: datetime
    http_status: int | None
    error: str

    def to_public(self) -> dict[str, Any]:
        """What the console shows: the state, not the body."""
        return {"id": self.id, "approval_id": self.approval_id, "budget_id": self.budget_id, "host": self.host,
                "format": self.format, "status": self.status, "attempts": self.attempts,
                "next_attempt_at": self.next_at.isoformat() if self.status == "pending" else None,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat(),
                "http_status": self.http_status, "error": self.error}


def _delivery(row: Row) -> Delivery:
    return Delivery(id=int(row[0]), approval_id=str(row[1]), budget_id=str(row[2]), host=str(row[3]),
                    format=str(row[4]), body=str(row[5]), status=row[6], attempts=int(row[7]),
                    next_at=from_us(int(row[8])), created_at=from_us(int(row[9])), updated_at=from_us(int(row[10])),
                    http_status=None if row[11] is None else int(row[11]), error=str(row[12] or ""))


def enqueue_steps(approval_id: str, budget_id: str, dest: str, host: str, fmt: str, body: str,
                  now: datetime) -> Steps[bool]:
    """Owe one notification (once per approval and endpoint); False when it was already owed."""
    at = to_us(now)
    rows = yield Q("INSERT INTO webhook_outbox (approval_id, budget_id, dest, host, format, body, status, attempts, "
                   "next_us, created_us, updated_us, error) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, '') "
                   "ON CONFLICT DO NOTHING RETURNING id", (approval_id, budget_id, dest, host, fmt, body, at, at, at))
    return bool(rows)


def claim_steps(dest: str, now: datetime, lease_until: datetime, limit: int) -> Steps[list[Delivery]]:
    """Take up to `limit` due deliveries of `dest` for one attempt each (counted now, leased until then)."""
    at = to_us(now)
    # The conditions are repeated outside the sub-select: PostgreSQL re-checks them on a row another
    # worker changed meanwhile, so two workers never take the same delivery.
    due = "dest = ? AND status = 'pending' AND next_us <= ? AND (lease_us IS NULL OR lease_us <= ?)"
    rows = yield Q(f"UPDATE webhook_outbox SET attempts = attempts + 1, lease_us = ?, updated_us = ? WHERE {due} "
                   f"AND id IN (SELECT id FROM webhook_outbox WHERE {due} ORDER BY next_us, id LIMIT ?) "
                   f"RETURNING {_COLUMNS}",
                   (to_us(lease_until), at, dest, at, at, dest, at, at, limit))
    return sorted((_delivery(row) for row in rows), key=lambda d: (d.next_at, d.id))


def finish_steps(dialect: Dialect, delivery: Delivery, status: DeliveryStatus, next_at: datetime,
                 http_status: int | None, error: str, now: datetime) -> Steps[None]:
    """Record an attempt's outcome; a final one (delivered or failed) is also audited, with the host only."""
    yield Q("UPDATE webhook_outbox SET status = ?, next_us = ?, lease_us = NULL, http_status = ?, error = ?, "
            "updated_us = ? WHERE id = ?", (status, to_us(next_at), http_status, error[:300], to_us(now), delivery.id))
    if status != "pending":
        yield from append_steps(dialect, "approval_notified", {
            "approval_id": delivery.approval_id, "host": delivery.host, "format": delivery.format,
            "delivered": status == "delivered", "http_status": http_status, "attempts": delivery.attempts,
            "error": error[:300]}, budget_id=delivery.budget_id, at=now)


def next_due_steps(dest: str) -> Steps[datetime | None]:
    """When the earliest pending delivery of `dest` is due, or None when nothing is owed."""
    # A leased delivery is due again only when its lease ends (else a second worker would spin on it).
    rows = yield Q("SELECT MIN(CASE WHEN lease_us IS NOT NULL AND lease_us > next_us THEN lease_us ELSE next_us END) "
                   "FROM webhook_outbox WHERE dest = ? AND status = 'pending'", (dest,))
    return None if not rows or rows[0][0] is None else from_us(int(rows[0][0]))


def list_steps(limit: int = 100, *, status: str | None = None, approval_id: str | None = None) -> Steps[list[Delivery]]:
    """Deliveries, newest first, optionally only those of one status or one approval."""
    where, args = [], []  # type: tuple[list[str], list[Any]]
    if status is not None:
        where.append("status = ?")
        args.append(status)
    if approval_id is not None:
        where.append("approval_id = ?")
        args.append(approval_id)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    rows = yield Q(f"SELECT {_COLUMNS} FROM webhook_outbox{clause} ORDER BY created_us DESC, id DESC LIMIT ?",
                   (*args, limit))
    return [_delivery(row) for row in rows]
