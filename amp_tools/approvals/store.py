"""Durable approval requests and single-use grants, in the ledger's own database.

Owns the ``approval_requests`` table, which lives beside the ledger (the same SQLite file or
PostgreSQL database), so agents on several hosts and one inbox share it. The store runs its
statements through the ledger's transaction primitives (`run_write` / `run_read` and their sync
twins), so it works on both engines, sync and async, with the ledger's locking.

A request moves ``pending -> approved | denied | expired``; ``approved -> consumed`` when the
agent's retry takes the grant (exactly once, even across processes: a conditional UPDATE under
the write lock); ``denied -> reopened`` when the owner lets the agent ask again. A denial stands
until reopened: every later consult for the same payment (same binding: merchant, amount,
currency and basket) is answered with the original denial at once, so a model cannot keep asking.
A pending request past its expiry is marked ``expired`` (denied automatically, audited) by
`expire_due`, which the inbox runs periodically and every consult runs for its own binding.

Every creation, decision, expiry and reopening appends an audit record in the same transaction.
`import_legacy` copies the rows of an old standalone ``approvals.db`` (idempotent).

Only people reach `approve`, `deny` and `reopen` (the CLI, the inbox); no tool calls them.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from amp_tools.approvals.request import ApprovalDecision, ApprovalRequest
from amp_tools.clock import SYSTEM_CLOCK, Clock, utc
from amp_tools.errors import AmpToolsError, ConfigError, InvalidArguments, NotFound
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.ledger._sql import Dialect, Q, Row, Steps, from_us, to_us
from amp_tools.ledger.audit import append_steps
from amp_tools.owner.decisions import decide_signed_steps
from amp_tools.owner.keys import OwnerKey
from amp_tools.untrusted import one_line

__all__ = ["ApprovalRecord", "ApprovalStateError", "ApprovalStore", "Consult", "Status"]

T = TypeVar("T")
Status = Literal["pending", "approved", "denied", "consumed", "expired", "reopened"]
_STATUSES = ("pending", "approved", "denied", "consumed", "expired", "reopened")
_MAX_TEXT = 500
_ENSURE_LOCK = 0x616D7061  # PostgreSQL advisory lock: one table creator at a time

_TABLE = """CREATE TABLE IF NOT EXISTS approval_requests (
    id          TEXT PRIMARY KEY,
    budget_id   TEXT NOT NULL,
    binding     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed', 'expired', 'reopened')),
    approved    INTEGER,
    request     TEXT NOT NULL,
    created_us  BIGINT NOT NULL,
    expires_us  BIGINT NOT NULL,
    decided_us  BIGINT,
    decided_by  TEXT,
    reason      TEXT NOT NULL,
    consumed_us BIGINT,
    reopened_us BIGINT)"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS approval_requests_binding ON approval_requests (binding, status)",
    "CREATE INDEX IF NOT EXISTS approval_requests_created ON approval_requests (created_us)",
    # At most one open question per payment, even when agents on two hosts ask at the same moment.
    "CREATE UNIQUE INDEX IF NOT EXISTS approval_requests_one_pending ON approval_requests (binding) "
    "WHERE status = 'pending'",
)
_COLUMNS = "request, status, approved, decided_by, decided_us, reason, budget_id"


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
    budget_id: str = ""

    @property
    def id(self) -> str:
        return self.request.id

    def is_expired(self, now: datetime) -> bool:
        return self.request.is_expired(now)


@dataclass(frozen=True)
class Consult:
    """What a consult found: a decision to act on, or the (possibly new) pending record."""

    decision: ApprovalDecision | None
    record: ApprovalRecord | None
    created: bool = False


def _record(row: Row, now: datetime | None = None) -> ApprovalRecord:
    request = ApprovalRequest.from_public(json.loads(row[0]))
    status: Status = row[1]
    if status == "pending" and now is not None and request.is_expired(now):
        status = "expired"  # not yet swept: shown as what it is
    return ApprovalRecord(request=request, status=status, approved=None if row[2] is None else bool(row[2]),
                          decided_by=row[3], decided_at=None if row[4] is None else from_us(int(row[4])),
                          reason=str(row[5] or ""), budget_id=str(row[6] or ""))


def _text(name: str, value: object, *, required: bool = False) -> str:
    return one_line(name, value, _MAX_TEXT, required=required,
                    missing=f"an approval decision needs {name} (the name of the person deciding)")


def _audit_payload(record_id: str, request: ApprovalRequest, **facts: Any) -> dict[str, Any]:
    return {"approval_id": record_id, "binding": request.binding, "action": request.action,
            "merchant_id": request.merchant_id, "amount": request.amount, "budget_amount": request.budget_amount,
            **facts}


# ---------------------------------------------------------------------------------------- steps
def ensure_steps(dialect: Dialect) -> Steps[None]:
    if dialect.name == "postgresql":
        yield Q("SELECT pg_advisory_xact_lock(?)", (_ENSURE_LOCK,))
    yield Q(_TABLE)
    for statement in _INDEXES:
        yield Q(statement)


def _get_steps(approval_id: str, now: datetime | None, *, lock: str = "") -> Steps[ApprovalRecord]:
    rows = yield Q(f"SELECT {_COLUMNS} FROM approval_requests WHERE id = ?{lock}", (approval_id,))
    if not rows:
        raise NotFound(f"approval {approval_id!r} does not exist",
                       hint="List approvals with `amp-tools approvals list` or open the inbox.")
    return _record(rows[0], now)


def _insert_steps(dialect: Dialect, request: ApprovalRequest, budget_id: str, now: datetime) -> Steps[bool]:
    """Insert a pending request; False when another pending one holds the binding (or the id exists)."""
    rows = yield Q("INSERT INTO approval_requests (id, budget_id, binding, status, request, created_us, expires_us, "
                   "reason) VALUES (?, ?, ?, 'pending', ?, ?, ?, '') ON CONFLICT DO NOTHING RETURNING id",
                   (request.id, budget_id, request.binding, json.dumps(request.to_public(), sort_keys=True),
                    to_us(request.created_at), to_us(request.expires_at)))
    if not rows:
        return False
    yield from append_steps(dialect, "approval_request", _audit_payload(
        request.id, request, rules=list(request.rules), expires_at=request.expires_at.isoformat()),
        budget_id=budget_id, at=now)
    return True


def _expire_steps(dialect: Dialect, now: datetime, binding: str | None = None) -> Steps[list[str]]:
    """Mark pending requests past their expiry as expired (denied automatically), auditing each."""
    cond, params = ("AND binding = ? ", (binding,)) if binding is not None else ("", ())
    rows = yield Q(f"UPDATE approval_requests SET status = 'expired', approved = 0, decided_us = ?, "
                   "decided_by = 'expiry', reason = 'expired without an answer' "
                   f"WHERE status = 'pending' AND expires_us <= ? {cond}RETURNING id, request, budget_id",
                   (to_us(now), to_us(now), *params))
    for row in sorted(rows, key=lambda r: str(r[0])):
        request = ApprovalRequest.from_public(json.loads(row[1]))
        yield from append_steps(dialect, "approval_expired", _audit_payload(
            str(row[0]), request, approved=False, by="expiry", reason="expired without an answer"),
            budget_id=str(row[2]), at=now)
    return sorted(str(r[0]) for r in rows)


def _standing_denial_steps(binding: str) -> Steps[ApprovalDecision | None]:
    rows = yield Q("SELECT decided_by, reason FROM approval_requests WHERE binding = ? AND status = 'denied' "
                   "ORDER BY decided_us DESC LIMIT 1", (binding,))
    if not rows:
        return None
    return ApprovalDecision(False, str(rows[0][1] or "denied by the owner"), str(rows[0][0] or ""))


def _consume_steps(dialect: Dialect, binding: str, now: datetime) -> Steps[ApprovalDecision | None]:
    """The approved, unexpired grant for `binding`, taken once."""
    rows = yield Q("SELECT id, decided_by, reason, expires_us FROM approval_requests WHERE binding = ? AND "
                   f"status = 'approved' AND expires_us > ? ORDER BY decided_us LIMIT 1{dialect.for_update}",
                   (binding, to_us(now)))
    if not rows:
        return None
    won = yield Q("UPDATE approval_requests SET status = 'consumed', consumed_us = ? "
                  "WHERE id = ? AND status = 'approved' RETURNING id", (to_us(now), rows[0][0]))
    if not won:
        return None
    # The owner's signature, if any: an agent pinned to the owner's key checks it against its own payment.
    signed = yield Q("SELECT signature FROM approval_signatures WHERE approval_id = ? AND decision = 'approve'",
                     (rows[0][0],))
    return ApprovalDecision(approved=True, reason=str(rows[0][2] or ""), approver=str(rows[0][1] or ""),
                            approval_id=str(rows[0][0]), expires_at=from_us(int(rows[0][3])),
                            signature=str(signed[0][0]) if signed else None)


def _consult_steps(dialect: Dialect, request: ApprovalRequest, budget_id: str, now: datetime) -> Steps[Consult]:
    """One transaction: expire, a standing denial, a grant to take, or the pending question."""
    yield from _expire_steps(dialect, now, request.binding)
    denial = yield from _standing_denial_steps(request.binding)
    if denial is not None:
        return Consult(denial, None)
    grant = yield from _consume_steps(dialect, request.binding, now)
    if grant is not None:
        return Consult(grant, None)
    created = yield from _insert_steps(dialect, request, budget_id, now)
    rows = yield Q(f"SELECT {_COLUMNS} FROM approval_requests WHERE binding = ? AND status = 'pending'",
                   (request.binding,))
    if not rows:  # the request's id already exists in another state: a programming error upstream
        raise ApprovalStateError(f"approval {request.id} already exists and is not pending")
    return Consult(None, _record(rows[0], now), created)


def _decide_steps(dialect: Dialect, approval_id: str, approved: bool, by: str, reason: str,
                  now: datetime) -> Steps[ApprovalRecord]:
    record = yield from _get_steps(approval_id, None, lock=dialect.for_update)
    if record.status != "pending":
        raise ApprovalStateError(f"approval {approval_id} is already {record.status}; it cannot be decided again")
    if record.request.is_expired(now):
        yield from _expire_steps(dialect, now, record.request.binding)
        raise ApprovalStateError(f"approval {approval_id} expired at {record.request.expires_at.isoformat()}; "
                                 "the agent must ask again for a new approval")
    status = "approved" if approved else "denied"
    yield Q("UPDATE approval_requests SET status = ?, approved = ?, decided_us = ?, decided_by = ?, reason = ? "
            "WHERE id = ? AND status = 'pending'", (status, int(approved), to_us(now), by, reason, approval_id))
    yield from append_steps(dialect, "approval_decision", _audit_payload(
        approval_id, record.request, approved=approved, by=by, reason=reason), budget_id=record.budget_id, at=now)
    return (yield from _get_steps(approval_id, now))


def _reopen_steps(dialect: Dialect, approval_id: str, by: str, now: datetime) -> Steps[ApprovalRecord]:
    record = yield from _get_steps(approval_id, None, lock=dialect.for_update)
    if record.status != "denied":
        raise ApprovalStateError(f"approval {approval_id} is {record.status}; only a denied request can be reopened")
    yield Q("UPDATE approval_requests SET status = 'reopened', reopened_us = ? WHERE id = ? AND status = 'denied'",
            (to_us(now), approval_id))
    yield from append_steps(dialect, "approval_reopened", _audit_payload(approval_id, record.request, by=by),
                            budget_id=record.budget_id, at=now)
    return (yield from _get_steps(approval_id, now))


def _list_steps(status: str | None, now: datetime, limit: int) -> Steps[list[ApprovalRecord]]:
    query, args = f"SELECT {_COLUMNS} FROM approval_requests", ()  # type: tuple[str, tuple[Any, ...]]
    if status == "pending":
        query, args = query + " WHERE status = 'pending' AND expires_us > ?", (to_us(now),)
    elif status == "expired":
        query, args = query + " WHERE status = 'expired' OR (status = 'pending' AND expires_us <= ?)", (to_us(now),)
    elif status is not None:
        query, args = query + " WHERE status = ?", (status,)
    rows = yield Q(query + " ORDER BY created_us DESC, id LIMIT ?", (*args, limit))
    return [_record(row, now) for row in rows]


def _import_steps(dialect: Dialect, rows: list[Row], budget_id: str, now: datetime) -> Steps[int]:
    added = 0
    for row in rows:
        got = yield Q("INSERT INTO approval_requests (id, budget_id, binding, status, approved, request, created_us, "
                      "expires_us, decided_us, decided_by, reason, consumed_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                      "?, ?) ON CONFLICT DO NOTHING RETURNING id",
                      (row[0], budget_id, row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
                       row[9] or "", row[10]))
        added += len(got)
    if added:
        yield from append_steps(dialect, "approvals_imported", {"count": added}, budget_id=budget_id, at=now)
    return added


# ---------------------------------------------------------------------------------------- store
def _ledger_database(target: str | Path | None) -> str | Path:
    """`target` if it names the configured ledger or an existing ledger database; else `ConfigError`."""
    from amp_tools import config
    from amp_tools.ledger import parse_ledger_url

    configured = config.ledger_url()
    if target is None:
        return configured
    parsed = parse_ledger_url(target)
    if parsed.engine == "postgresql" or parsed.where == ":memory:":
        return target
    path = Path(parsed.where).expanduser()
    mine = parse_ledger_url(configured)
    if mine.engine == "sqlite" and mine.where != ":memory:" and Path(mine.where).expanduser().resolve() == \
            path.resolve():
        return target
    if not path.is_file() or not _is_ledger_file(path):
        what = "does not exist" if not path.is_file() else "is not a ledger database"
        legacy = path.is_file() and has_legacy_table(str(path))
        raise ConfigError(
            f"ApprovalStore opens the ledger's own database only; {path} {what}",
            hint=("It is an old standalone approvals file: import it with "
                  "ApprovalStore(ledger).import_legacy(path). " if legacy else "")
            + "Pass the ledger the agents use (ApprovalStore(toolkit.ledger)) or its URL, or nothing for the "
              "configured ledger (AMP_TOOLS_LEDGER_URL).")
    return target


def _is_ledger_file(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        rows = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchall()
        return bool(rows)
    except sqlite3.Error:
        return False
    finally:
        conn.close()


class ApprovalStore:
    """Approval requests and grants in the ledger's database (SQLite or PostgreSQL).

    `target` is an open ledger (shared, not closed by the store), or the URL or path of an existing
    ledger database (opened and owned by the store), or None for the configured ledger
    (``AMP_TOOLS_LEDGER_URL`` or the default file). The store never creates a second database: a
    path that is not a ledger's is refused (`ConfigError`), so approvals cannot silently land where
    no agent and no inbox looks. `budget_id` stamps requests that do not name their own budget.
    """

    def __init__(self, target: LedgerBase | str | Path | None = None, *, clock: Clock | None = None,
                 budget_id: str = "default", owner_signer: OwnerKey | None = None) -> None:
        if isinstance(target, LedgerBase):
            self.ledger, self._owned = target, False
        else:
            self.ledger, self._owned = open_ledger(_ledger_database(target), clock=clock), True
        self.clock: Clock = clock or self.ledger.clock or SYSTEM_CLOCK
        self.budget_id = budget_id
        #: The owner's key, on the owner's side (CLI, console): every decision is signed with it.
        self.owner_signer = owner_signer
        self.dialect = self.ledger.dialect
        self.ledger.run_write_sync(lambda: ensure_steps(self.dialect))
        path = getattr(self.ledger, "path", None)
        if isinstance(path, str) and path != ":memory:" and has_legacy_table(path):
            self.import_legacy(path)  # an older store kept its `approvals` table in this very file

    def close(self) -> None:
        if self._owned:
            self.ledger.close_sync()

    def _now(self, now: datetime | None) -> datetime:
        return utc(now) if now is not None else self.clock.now()

    def _budget(self, request: ApprovalRequest) -> str:
        return request.budget_id or self.budget_id

    def _signed(self, approval_id: str, decision: str, at: datetime,
                factory: Callable[[], Steps[ApprovalRecord]]) -> Callable[[], Steps[ApprovalRecord]]:
        """`factory`'s decision steps, followed in the same transaction by the owner's signature."""
        key = self.owner_signer
        if key is None:
            return factory
        return lambda: decide_signed_steps(self.dialect, key, approval_id, decision, factory, now=at)

    def _w(self, factory: Callable[[], Steps[T]]) -> T:
        return self.ledger.run_write_sync(factory)

    def _r(self, factory: Callable[[], Steps[T]]) -> T:
        return self.ledger.run_read_sync(factory)

    # ------------------------------------------------------------------ sync API
    def create(self, request: ApprovalRequest) -> ApprovalRecord:
        """Store a new pending request (its id must be new, and no other request may be pending for it)."""
        now = self.clock.now()
        if not self._w(lambda: _insert_steps(self.dialect, request, self._budget(request), now)):
            raise ApprovalStateError(f"approval {request.id} already exists, or the same payment is already pending")
        return ApprovalRecord(request, "pending", None, None, None, "", self._budget(request))

    def open_or_create(self, request: ApprovalRequest, now: datetime | None = None) -> ApprovalRecord:
        """The unexpired pending request with the same binding, or `request` stored as new."""
        at = self._now(now)

        def steps() -> Steps[ApprovalRecord]:
            yield from _expire_steps(self.dialect, at, request.binding)
            yield from _insert_steps(self.dialect, request, self._budget(request), at)
            rows = yield Q(f"SELECT {_COLUMNS} FROM approval_requests WHERE binding = ? AND status = 'pending'",
                           (request.binding,))
            return _record(rows[0], at)

        return self._w(steps)

    def consult(self, request: ApprovalRequest, now: datetime | None = None) -> Consult:
        """Expire, then: a standing denial, else the grant (taken once), else the pending question."""
        at = self._now(now)
        return self._w(lambda: _consult_steps(self.dialect, request, self._budget(request), at))

    def get(self, approval_id: str) -> ApprovalRecord:
        now = self.clock.now()
        return self._r(lambda: _get_steps(approval_id, now))

    def list(self, status: Status | None = None, *, limit: int = 500) -> list[ApprovalRecord]:
        """Stored requests, newest first. ``pending`` means still answerable; ``expired`` includes
        pending requests past their expiry that were not swept yet."""
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(_STATUSES)}")
        now = self.clock.now()
        return self._r(lambda: _list_steps(status, now, limit))

    def approve(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        """A person says yes. Raises `ApprovalStateError` if expired or already decided."""
        return self._decide(approval_id, True, by, "", now)

    def deny(self, approval_id: str, by: str, reason: str = "", *, now: datetime | None = None) -> ApprovalRecord:
        """A person says no; the denial stands for this payment until `reopen`."""
        return self._decide(approval_id, False, by, reason, now)

    def _decide(self, approval_id: str, approved: bool, by: str, reason: str,
                now: datetime | None) -> ApprovalRecord:
        who, why, at = _text("by", by, required=True), _text("reason", reason), self._now(now)
        ident = _text("approval id", approval_id)
        try:
            return self._w(self._signed(ident, "approve" if approved else "deny", at,
                                        lambda: _decide_steps(self.dialect, ident, approved, who, why, at)))
        except ApprovalStateError as exc:
            if "expired at" in exc.message:
                self.expire_due(at)  # the rollback undid the sweep; record the expiry for good
            raise

    def reopen(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        """Lift a denial: the agent may ask a person again about the same payment."""
        who, at = _text("by", by, required=True), self._now(now)
        return self._w(self._signed(approval_id, "reopen", at,
                                    lambda: _reopen_steps(self.dialect, approval_id, who, at)))

    def consume(self, binding: str, now: datetime | None = None) -> ApprovalDecision | None:
        """A standing denial for `binding`, else its approved unexpired grant taken once, else None."""
        at = self._now(now)

        def steps() -> Steps[ApprovalDecision | None]:
            denial = yield from _standing_denial_steps(binding)
            return denial if denial is not None else (yield from _consume_steps(self.dialect, binding, at))

        return self._w(steps)

    def expire_due(self, now: datetime | None = None) -> builtins.list[str]:
        """Deny every pending request past its expiry (audited); returns their ids."""
        at = self._now(now)
        return self._w(lambda: _expire_steps(self.dialect, at))

    def import_legacy(self, path: str | Path) -> int:
        """Copy the requests of a standalone SQLite ``approvals.db`` (older amp-tools); idempotent."""
        source = Path(path).expanduser()
        if not source.exists():
            raise NotFound(f"no approvals database at {source}")
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT id, binding, status, approved, request, created_us, expires_us, decided_us, "
                                "decided_by, reason, consumed_us FROM approvals ORDER BY created_us").fetchall()
        except sqlite3.Error as exc:
            raise InvalidArguments(f"{source} holds no approvals table of amp-tools ({exc})") from exc
        finally:
            conn.close()
        now = self.clock.now()
        return int(self._w(lambda: _import_steps(self.dialect, rows, self.budget_id, now)))

    # ------------------------------------------------------------------ async API
    async def aw(self, factory: Callable[[], Steps[T]]) -> T:
        return await self.ledger.run_write(factory)

    async def acreate(self, request: ApprovalRequest) -> ApprovalRecord:
        now = self.clock.now()
        if not await self.aw(lambda: _insert_steps(self.dialect, request, self._budget(request), now)):
            raise ApprovalStateError(f"approval {request.id} already exists, or the same payment is already pending")
        return ApprovalRecord(request, "pending", None, None, None, "", self._budget(request))

    async def aopen_or_create(self, request: ApprovalRequest, now: datetime | None = None) -> ApprovalRecord:
        found = await self.aconsult(request, now)
        if found.record is None:
            raise ApprovalStateError(f"the payment of approval {request.id} was already decided; consult it instead")
        return found.record

    async def aconsult(self, request: ApprovalRequest, now: datetime | None = None) -> Consult:
        at = self._now(now)
        return await self.aw(lambda: _consult_steps(self.dialect, request, self._budget(request), at))

    async def aget(self, approval_id: str) -> ApprovalRecord:
        now = self.clock.now()
        return await self.ledger.run_read(lambda: _get_steps(approval_id, now))

    async def alist(self, status: Status | None = None, *, limit: int = 500) -> builtins.list[ApprovalRecord]:
        if status is not None and status not in _STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(_STATUSES)}")
        now = self.clock.now()
        return await self.ledger.run_read(lambda: _list_steps(status, now, limit))

    async def aapprove(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        return await self._adecide(approval_id, True, by, "", now)

    async def adeny(self, approval_id: str, by: str, reason: str = "", *,
                    now: datetime | None = None) -> ApprovalRecord:
        return await self._adecide(approval_id, False, by, reason, now)

    async def _adecide(self, approval_id: str, approved: bool, by: str, reason: str,
                       now: datetime | None) -> ApprovalRecord:
        who, why, at = _text("by", by, required=True), _text("reason", reason), self._now(now)
        ident = _text("approval id", approval_id)
        try:
            return await self.aw(self._signed(ident, "approve" if approved else "deny", at,
                                              lambda: _decide_steps(self.dialect, ident, approved, who, why, at)))
        except ApprovalStateError as exc:
            if "expired at" in exc.message:
                await self.aexpire_due(at)
            raise

    async def areopen(self, approval_id: str, by: str, *, now: datetime | None = None) -> ApprovalRecord:
        who, at = _text("by", by, required=True), self._now(now)
        return await self.aw(self._signed(approval_id, "reopen", at,
                                          lambda: _reopen_steps(self.dialect, approval_id, who, at)))

    async def aconsume(self, binding: str, now: datetime | None = None) -> ApprovalDecision | None:
        at = self._now(now)

        def steps() -> Steps[ApprovalDecision | None]:
            denial = yield from _standing_denial_steps(binding)
            return denial if denial is not None else (yield from _consume_steps(self.dialect, binding, at))

        return await self.aw(steps)

    async def aexpire_due(self, now: datetime | None = None) -> builtins.list[str]:
        at = self._now(now)
        return await self.aw(lambda: _expire_steps(self.dialect, at))


def has_legacy_table(path: str) -> bool:
    """Whether an SQLite file holds the approvals table of amp-tools before approvals moved into the ledger."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'approvals'").fetchone())
    except sqlite3.Error:
        return False
    finally:
        conn.close()
