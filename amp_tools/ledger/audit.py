"""The hash-chained audit trail, kept in the ledger's database.

Each budget has its own chain (schema version 5). A record is ``(seq, n, ts, kind, budget_id,
payload, prev_hash, hash)``: ``seq`` is unique across the database (the global order, what entries
refer to), ``n`` the record's position in its budget's chain (1, 2, ...), ``prev_hash`` the hash of
record ``n - 1`` of the same budget (64 zeros for the first) and
``hash = sha256(prev_hash + canonical_json({seq, n, ts, kind, budget_id, payload}))``. The table
``audit_heads`` holds per budget the last ``n``, seq and hash, updated in the same transaction as
every append; its row is the lock that orders one budget's appends, so separate budgets never wait
on each other. (A global seq with per-budget links, rather than a per-budget seq alone, keeps one
total order for export and keeps the entries' ``audit_seq`` references unique.)

Records written before version 5 form the *legacy chain*: ``n`` NULL, linked in seq order, hashed
without ``n``, its head frozen in the one-row ``audit_head`` table. It stays verifiable as it was.

`verify()` (see `audit_verify`) detects an edited record (hash mismatch), a reordered or deleted
record (a gap in ``n`` or a ``prev_hash`` mismatch), a truncated tail (a head points past the last
record) and, by default, a ledger entry, refund or budget total that differs from what its audit
records say. It cannot detect a writer with database access who rewrites a whole chain *and* its
head (and the ledger rows) consistently: the chain is not signed. Keep `heads()` somewhere else (a
log, a ticket, a second system) when that matters; comparing them later closes the gap.

Payloads never carry secrets: `redact` replaces values under secret-looking keys before hashing,
and unknown objects are written with `str()` (the AMP `Secret` type prints redacted).
"""

from __future__ import annotations

import functools
import hashlib
import json
import json.encoder
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NamedTuple, TypeVar

from amp_tools._redact import is_secret_key, redact_tree
from amp_tools.clock import utc
from amp_tools.money import Money

from ._sql import Dialect, Q, Row, Steps, StepsFactory

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "ChainHead", "VerifyReport", "append_steps", "canonical_json",
           "head_from_rows", "head_query", "lock_head_steps", "record_hash", "redact", "write_record_steps"]

T = TypeVar("T")
GENESIS = "0" * 64
_BATCH = 2000
_jstr: Callable[[str], str] = json.encoder.encode_basestring


def redact(value: Any) -> Any:
    """A copy of `value` with every value under a secret-looking key replaced by '[redacted]'."""
    return redact_tree(value, is_secret_key, _redacted)


def _redacted(value: Any) -> str:
    return "[redacted]"


def _default(value: Any) -> Any:
    if isinstance(value, Money):
        return {"minor": value.minor, "currency": value.currency}
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return _ts(value)
    return str(value)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def _ts(value: datetime) -> str:
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, seq: int, ts: str, kind: str, budget_id: str, payload: Any,
                n: int | None = None) -> str:
    """The digest of a record; `n` (its position in its budget's chain) is hashed too, except in the
    legacy chain (records written before per-budget chains, `n` None)."""
    fields: dict[str, Any] = {"seq": seq, "ts": ts, "kind": kind, "budget_id": budget_id, "payload": payload}
    if n is not None:
        fields["n"] = n
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def _text_hash(prev_hash: str, seq: int, ts: str, kind: str, budget_id: str, payload_text: str, n: int) -> str:
    """`record_hash` with the payload already in canonical JSON (keys in sorted order, as dumps writes them)."""
    # A JSON string literal is the same whatever dumps' sort/separator options: the C encoder suffices.
    body = (f'{{"budget_id":{_jstr(budget_id)},"kind":{_jstr(kind)},"n":{n},"payload":{payload_text},'
            f'"seq":{seq},"ts":{_jstr(ts)}}}')
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    ts: str
    kind: str
    budget_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    #: Position in its budget's chain (1, 2, ...); None for a record of the legacy (pre-version-5) chain.
    n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"seq": self.seq, "ts": self.ts, "kind": self.kind, "budget_id": self.budget_id,
               "payload": self.payload, "prev_hash": self.prev_hash, "hash": self.hash}
        if self.n is not None:
            out["n"] = self.n
        return out


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS
    #: Budget chains checked (the legacy chain not counted) and ledger entries cross-checked.
    chains: int = 0
    entries: int = 0
    #: The ledger entry found inconsistent with its audit records, if that was the problem.
    entry_id: int | None = None


class ChainHead(NamedTuple):
    """A budget chain's head as locked by `lock_head_steps`: its last position and hash, and the
    global seq the next record of this transaction gets."""

    n: int
    hash: str
    seq: int


def append_steps(dialect: Dialect, kind: str, payload: Mapping[str, Any], *, budget_id: str,
                 at: datetime) -> Steps[int]:
    """Append one record to the budget's chain inside the caller's transaction; returns its seq."""
    head = yield from lock_head_steps(dialect, budget_id)
    yield from write_record_steps(head, kind, payload, budget_id=budget_id, at=at)
    return head.seq


def lock_head_steps(dialect: Dialect, budget_id: str) -> Steps[ChainHead]:
    """Lock the head of `budget_id`'s chain (creating it) and return it with the next global seq.

    Split from `write_record_steps` so the ledger can learn the seq before it writes the row
    that refers to it (the entry carries its audit seq without a second UPDATE). Only this
    budget's head is locked: appends to other budgets' chains proceed in parallel.
    """
    rows = yield head_query(dialect, budget_id)
    return head_from_rows(rows)


def head_query(dialect: Dialect, budget_id: str) -> Q:
    """The statement of `lock_head_steps` (to send in a batch); `head_from_rows` reads its answer."""
    return Q(_HEAD_SQL[dialect.name], (budget_id, GENESIS))


def head_from_rows(rows: list[Row]) -> ChainHead:
    return ChainHead(int(rows[0][0]), str(rows[0][1]), int(rows[0][2]))


def write_record_steps(head: ChainHead, kind: str, payload: Mapping[str, Any], *, budget_id: str,
                       at: datetime, redacted: bool = False) -> Steps[None]:
    """Write the record after `head` (position ``head.n + 1``, seq ``head.seq``) in the same transaction.

    `redacted=True` skips `redact`: only for the ledger's own payloads, whose keys are fixed and
    whose one free-form part (a commit's outcome) was redacted already.
    """
    if not kind or not isinstance(kind, str):
        raise ValueError(f"audit kind {kind!r} must be a non-empty string such as 'reserve'")
    # Serialized once: canonical JSON of the parsed text is the text itself, so the stored payload and
    # the hashed body reuse it (`record_hash` over the parsed payload gives the same digest; verify uses it).
    text = canonical_json(payload if redacted else redact(dict(payload)))
    n, seq, ts = head.n + 1, head.seq, _ts(at)
    digest = _text_hash(head.hash, seq, ts, kind, budget_id, text, n)
    # Two tables, one row each: a backend may send both as one statement (`Q.merge`).
    yield Q("INSERT INTO audit (seq, n, ts, kind, budget_id, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, n, ts, kind, budget_id, text, head.hash, digest), nowait=True, merge=True)
    yield Q("INSERT INTO audit_heads (budget_id, n, seq, hash) VALUES (?, ?, ?, ?) ON CONFLICT (budget_id) "
            "DO UPDATE SET n = excluded.n, seq = excluded.seq, hash = excluded.hash", (budget_id, n, seq, digest),
            nowait=True, merge=True)


# SQLite: BEGIN IMMEDIATE already holds the only write lock, so a read (the head may not exist yet)
# suffices, and the next seq is the largest + 1. PostgreSQL: create-or-lock the budget's head in one
# upsert (DO UPDATE takes the row lock) and draw the seq from a sequence, which never blocks; a
# rolled-back transaction leaves a gap in the global seq, which is why chains link by position `n`.
_HEAD_SQL = {
    "sqlite": "SELECT COALESCE(h.n, 0), COALESCE(h.hash, g.genesis), (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit) "
              "FROM (SELECT ? AS budget_id, ? AS genesis) g LEFT JOIN audit_heads h ON h.budget_id = g.budget_id",
    "postgresql": "INSERT INTO audit_heads (budget_id, n, seq, hash) VALUES (?, 0, 0, ?) ON CONFLICT (budget_id) "
                  "DO UPDATE SET n = audit_heads.n RETURNING n, hash, nextval('audit_seq_gen')",
}


def _record(row: Row) -> AuditRecord:
    return AuditRecord(int(row[0]), str(row[1]), str(row[2]), str(row[3]), json.loads(row[4]), str(row[5]),
                       str(row[6]), None if row[7] is None else int(row[7]))


_COLS = "seq, ts, kind, budget_id, payload, prev_hash, hash, n"


def _records_steps(since_seq: int, limit: int) -> Steps[list[AuditRecord]]:
    rows = yield Q(f"SELECT {_COLS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit))
    return [_record(r) for r in rows]


class AuditLog:
    """The audit chain of one ledger database.

    Obtain it as `ledger.audit`. The ledger appends its own records inside its transactions;
    other modules (approvals, guard) call `append` for a record in a transaction of its own, or
    compose `append_steps` with their own steps through `ledger.run_write`.
    """

    def __init__(self, dialect: Dialect,
                 write: Callable[[StepsFactory[Any]], Awaitable[Any]],
                 read: Callable[[StepsFactory[Any]], Awaitable[Any]],
                 read_sync: Callable[[StepsFactory[Any]], Any],
                 write_sync: Callable[[StepsFactory[Any]], Any],
                 now: Callable[[], datetime]) -> None:
        self._dialect = dialect
        self._write, self._read = write, read
        self._write_sync, self._read_sync = write_sync, read_sync
        self._now = now

    def append_steps(self, kind: str, payload: Mapping[str, Any], *, budget_id: str = "",
                     at: datetime | None = None) -> Steps[int]:
        return append_steps(self._dialect, kind, payload, budget_id=budget_id, at=at or self._now())

    async def append(self, kind: str, payload: Mapping[str, Any], *, budget_id: str = "") -> int:
        """Append a record (decision, approval, ...) in its own transaction; returns its seq."""
        at = self._now()
        seq: int = await self._write(lambda: append_steps(self._dialect, kind, payload, budget_id=budget_id, at=at))
        return seq

    def append_sync(self, kind: str, payload: Mapping[str, Any], *, budget_id: str = "") -> int:
        at = self._now()
        seq: int = self._write_sync(lambda: append_steps(self._dialect, kind, payload, budget_id=budget_id, at=at))
        return seq

    async def verify(self, *, cross_check: bool = True, signatures: Any = None) -> VerifyReport:
        """Check every chain (the legacy one and one per budget) and, with `cross_check`, that the
        ledger's entries, refunds, totals, usage, approvals, freezes and policy versions are what
        their audit records say; `signatures` (see `amp_tools.owner.enforce.signature_check`) also
        verifies the owner's signatures."""
        from .audit_verify import verify_steps

        report: VerifyReport = await self._read(lambda: verify_steps(self._dialect, cross_check, signatures))
        return report

    def verify_sync(self, *, cross_check: bool = True, signatures: Any = None) -> VerifyReport:
        from .audit_verify import verify_steps

        report: VerifyReport = self._read_sync(lambda: verify_steps(self._dialect, cross_check, signatures))
        return report

    async def head(self) -> tuple[int, str]:
        """(seq, hash) of the newest record of any chain."""
        return await self._read(_head_steps)  # type: ignore[no-any-return]

    async def heads(self) -> dict[str, tuple[int, str]]:
        """Per budget, (records in its chain, last hash): store them elsewhere to detect a consistent
        rewrite of a chain later (see the module docstring)."""
        return await self._read(_heads_steps)  # type: ignore[no-any-return]

    async def records(self, *, since_seq: int = 0, limit: int = 1000) -> list[AuditRecord]:
        return await self._read(lambda: _records_steps(since_seq, limit))  # type: ignore[no-any-return]

    def _iter_sync(self) -> Iterator[AuditRecord]:
        last = 0
        while True:
            batch: list[AuditRecord] = self._read_sync(functools.partial(_records_steps, last, _BATCH))
            yield from batch
            if len(batch) < _BATCH:
                return
            last = batch[-1].seq

    async def export_jsonl(self, target: str | Path | IO[str]) -> int:
        """Write every record as one JSON line (seq order) to a path or text stream; returns the count."""
        count, last = 0, 0
        handle, owned = _open(target)
        try:
            while True:
                batch = await self.records(since_seq=last, limit=_BATCH)
                for rec in batch:
                    handle.write(canonical_json(rec.to_dict()) + "\n")
                count += len(batch)
                if len(batch) < _BATCH:
                    return count
                last = batch[-1].seq
        finally:
            if owned:
                handle.close()

    def export_jsonl_sync(self, target: str | Path | IO[str]) -> int:
        handle, owned = _open(target)
        try:
            count = 0
            for rec in self._iter_sync():
                handle.write(canonical_json(rec.to_dict()) + "\n")
                count += 1
            return count
        finally:
            if owned:
                handle.close()


def _open(target: str | Path | IO[str]) -> tuple[IO[str], bool]:
    if isinstance(target, str | Path):
        return open(target, "w", encoding="utf-8"), True  # closed by the caller
    return target, False


def _head_steps() -> Steps[tuple[int, str]]:
    rows = yield Q("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    return (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)


def _heads_steps() -> Steps[dict[str, tuple[int, str]]]:
    rows = yield Q("SELECT budget_id, n, hash FROM audit_heads WHERE n > 0 ORDER BY budget_id")
    return {str(r[0]): (int(r[1]), str(r[2])) for r in rows}
