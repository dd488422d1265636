"""The hash-chained audit trail, kept in the ledger's database.

Each record is ``(seq, ts, kind, budget_id, payload, prev_hash, hash)`` with
``hash = sha256(prev_hash + canonical_json({seq, ts, kind, budget_id, payload}))`` and the genesis
``prev_hash`` 64 zeros. A one-row ``audit_head`` table holds the last seq and hash and is
updated in the same transaction as every append; it is also the lock that orders appends.

`verify()` detects an edited record (hash mismatch), a reordered or deleted record (seq gap or
``prev_hash`` mismatch) and a truncated tail (the head points past the last record). It cannot
detect a writer with database access who rewrites the whole chain *and* the head consistently,
or who deletes the tail and rewinds the head: the chain is not signed. Keep `head()` somewhere
else (a log, a ticket, a second system) when that matters; comparing it later closes the gap.

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
from typing import IO, Any, TypeVar

from amp_tools.clock import utc
from amp_tools.money import Money

from ._sql import Dialect, Q, Row, Steps, StepsFactory

__all__ = ["GENESIS", "AuditLog", "AuditRecord", "VerifyReport", "append_steps", "canonical_json", "lock_head_steps",
           "redact", "write_record_steps"]

T = TypeVar("T")
GENESIS = "0" * 64
_SECRET_MARKERS = ("secret", "token", "password", "private", "api_key", "apikey", "credential",
                   "authorization", "serialized", "jwt", "signature", "cvv")
_SECRET_KEYS = frozenset({"l1", "l2", "l3", "key", "sig"})
_BATCH = 2000
_jstr: Callable[[str], str] = json.encoder.encode_basestring


@functools.lru_cache(maxsize=4096)
def _is_secret_key(key: str) -> bool:
    # Cached: payloads reuse a handful of key names, and this check ran for every key of every record.
    low = key.lower()
    return low in _SECRET_KEYS or any(marker in low for marker in _SECRET_MARKERS)


def redact(value: Any) -> Any:
    """A copy of `value` with every value under a secret-looking key replaced by '[redacted]'."""
    if isinstance(value, Mapping):
        return {str(k): ("[redacted]" if _is_secret_key(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


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


def record_hash(prev_hash: str, seq: int, ts: str, kind: str, budget_id: str, payload: Any) -> str:
    body = canonical_json({"seq": seq, "ts": ts, "kind": kind, "budget_id": budget_id, "payload": payload})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def _text_hash(prev_hash: str, seq: int, ts: str, kind: str, budget_id: str, payload_text: str) -> str:
    """`record_hash` with the payload already in canonical JSON (keys in sorted order, as dumps writes them)."""
    # A JSON string literal is the same whatever dumps' sort/separator options: the C encoder suffices.
    body = (f'{{"budget_id":{_jstr(budget_id)},"kind":{_jstr(kind)},"payload":{payload_text},'
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

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "kind": self.kind, "budget_id": self.budget_id,
                "payload": self.payload, "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str = ""
    head_seq: int = 0
    head_hash: str = GENESIS


def append_steps(dialect: Dialect, kind: str, payload: Mapping[str, Any], *, budget_id: str,
                 at: datetime) -> Steps[int]:
    """Append one record inside the caller's transaction; returns its seq."""
    prev_seq, prev_hash = yield from lock_head_steps(dialect)
    yield from write_record_steps(prev_seq, prev_hash, kind, payload, budget_id=budget_id, at=at)
    return prev_seq + 1


def lock_head_steps(dialect: Dialect) -> Steps[tuple[int, str]]:
    """Lock the chain head and return (last seq, last hash); the next record gets seq + 1.

    Split from `write_record_steps` so the ledger can learn the seq before it writes the row
    that refers to it (the entry carries its audit seq without a second UPDATE).
    """
    head = yield Q(_HEAD_SQL[dialect.name])
    return int(head[0][0]), str(head[0][1])


def write_record_steps(prev_seq: int, prev_hash: str, kind: str, payload: Mapping[str, Any], *, budget_id: str,
                       at: datetime, redacted: bool = False) -> Steps[None]:
    """Write record ``prev_seq + 1`` after a `lock_head_steps` in the same transaction.

    `redacted=True` skips `redact`: only for the ledger's own payloads, whose keys are fixed and
    whose one free-form part (a commit's outcome) was redacted already.
    """
    if not kind or not isinstance(kind, str):
        raise ValueError(f"audit kind {kind!r} must be a non-empty string such as 'reserve'")
    # Serialized once: canonical JSON of the parsed text is the text itself, so the stored payload and
    # the hashed body reuse it (`record_hash` over the parsed payload gives the same digest; verify uses it).
    text = canonical_json(payload if redacted else redact(dict(payload)))
    seq, ts = prev_seq + 1, _ts(at)
    digest = _text_hash(prev_hash, seq, ts, kind, budget_id, text)
    yield Q("INSERT INTO audit (seq, ts, kind, budget_id, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (seq, ts, kind, budget_id, text, prev_hash, digest), nowait=True)
    yield Q("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest), nowait=True)


_HEAD_SQL = {"sqlite": "SELECT seq, hash FROM audit_head WHERE id = 1",
             "postgresql": "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"}


def _record(row: Row) -> AuditRecord:
    return AuditRecord(int(row[0]), str(row[1]), str(row[2]), str(row[3]), json.loads(row[4]), str(row[5]),
                       str(row[6]))


_COLS = "seq, ts, kind, budget_id, payload, prev_hash, hash"


def _records_steps(since_seq: int, limit: int) -> Steps[list[AuditRecord]]:
    rows = yield Q(f"SELECT {_COLS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since_seq, limit))
    return [_record(r) for r in rows]


def _verify_steps() -> Steps[VerifyReport]:
    head = yield Q("SELECT seq, hash FROM audit_head WHERE id = 1")
    head_seq, head_hash = int(head[0][0]), str(head[0][1])
    expected, prev, count, last = 1, GENESIS, 0, 0

    def bad(seq: int, problem: str) -> VerifyReport:
        return VerifyReport(False, count, seq, problem, head_seq, head_hash)

    while True:
        rows = yield Q(f"SELECT {_COLS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (last, _BATCH))
        for row in rows:
            seq = int(row[0])
            if seq != expected:
                return bad(expected, f"record {expected} is missing (next stored record is {seq}): deleted")
            if str(row[5]) != prev:
                return bad(seq, f"record {seq} does not link to record {seq - 1} (prev_hash differs): "
                                "reordered, replaced or a predecessor was deleted")
            try:
                payload = json.loads(row[4])
            except ValueError:
                return bad(seq, f"record {seq} has a payload that is not JSON: edited")
            if record_hash(prev, seq, str(row[1]), str(row[2]), str(row[3]), payload) != str(row[6]):
                return bad(seq, f"record {seq} does not match its hash: edited")
            prev, expected, count, last = str(row[6]), seq + 1, count + 1, seq
        if len(rows) < _BATCH:
            break
    if head_seq != last or head_hash != prev:
        if head_seq > last:
            return bad(last + 1, f"the head says {head_seq} records but only {last} remain: tail truncated")
        return bad(head_seq + 1, f"records after {head_seq} are not covered by the head, or the head hash "
                                 "differs: appended outside the ledger or head edited")
    return VerifyReport(True, count, None, "", head_seq, head_hash)


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

    async def verify(self) -> VerifyReport:
        report: VerifyReport = await self._read(_verify_steps)
        return report

    def verify_sync(self) -> VerifyReport:
        report: VerifyReport = self._read_sync(_verify_steps)
        return report

    async def head(self) -> tuple[int, str]:
        """(last seq, last hash): store it elsewhere to detect a consistent rewrite later."""
        return await self._read(_head_steps)  # type: ignore[no-any-return]

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
    rows = yield Q("SELECT seq, hash FROM audit_head WHERE id = 1")
    return int(rows[0][0]), str(rows[0][1])
