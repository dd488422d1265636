"""Verification of the audit chains, and the cross-check of the ledger's rows against them.

Chains: the legacy chain (records of before schema version 5) is walked in seq order against the
frozen ``audit_head``; then every budget's chain in ``(budget_id, n)`` order against its row in
``audit_heads``. Each record's link and hash are recomputed.

Cross-check (on by default): the ledger's own records (reserve, transition, commit, release,
refund) are replayed per entry into what the entry must hold: its budget, key, action, amounts,
status, merchant transaction id, refunded amounts, whether and how much it counts, and the seq of
its last record. Then every entry, every refund and every budget's all-time totals are compared
with the replay. An edited amount, a flipped status, a deleted or an invented entry is reported
with the entry's id. Then the rows the guard reads to decide (usage buckets and totals,
approvals, freezes) are checked by `audit_enforced`. Memory: one small record per entry.

PostgreSQL runs the whole check in one REPEATABLE READ snapshot, SQLite in one read transaction,
so payments made meanwhile cannot look like tampering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._sql import Dialect, Q, Row, Steps
from .audit import GENESIS, VerifyReport, _text_hash, record_hash
from .audit_enforced import Authority, SignatureCheck, Tamper, enforced_steps
from .schema import changed_functions_steps

__all__ = ["verify_steps"]

_BATCH = 2000
_LEDGER_KINDS = frozenset({"reserve", "transition", "commit", "release", "refund"})
_COLS = "seq, ts, kind, budget_id, payload, prev_hash, hash, n"


@dataclass(slots=True)
class _Expect:
    """What an entry must hold according to its audit records."""

    budget_id: str
    key: str
    action: str
    amount: tuple[int, str] | None
    budget_amount: tuple[int, str] | None
    status: str = "reserved"
    external_ref: str | None = None
    refunded: int = 0
    refunded_budget: int = 0
    last_seq: int = 0


@dataclass(slots=True)
class _Progress:
    records: int = 0
    chains: int = 0
    entries: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS


_Bad = Tamper


def _money(value: Any) -> tuple[int, str] | None:
    if isinstance(value, dict) and "minor" in value and "currency" in value:
        return int(value["minor"]), str(value["currency"])
    return None


class _Replay:
    """Folds the ledger's records, in chain order, into the expected state of each entry and refund."""

    def __init__(self) -> None:
        self.entries: dict[int, _Expect] = {}
        self.refunds: dict[int, tuple[int, int, int, int]] = {}  # id -> (entry, amount, credit, seq)
        self.authority = Authority()

    def feed(self, seq: int, ts: str, kind: str, budget_id: str, payload: dict[str, Any]) -> None:
        if kind not in _LEDGER_KINDS:
            self.authority.feed(seq, ts, kind, budget_id, payload)
            return
        if kind not in _LEDGER_KINDS or not isinstance(payload.get("entry_id"), int):
            return
        entry_id = int(payload["entry_id"])
        if kind == "reserve":
            self.entries[entry_id] = _Expect(budget_id, str(payload.get("idempotency_key")),
                                             str(payload.get("action", "pay")), _money(payload.get("amount")),
                                             _money(payload.get("budget_amount")), last_seq=seq)
            return
        exp = self.entries.get(entry_id)
        if exp is None:
            raise _Bad(seq, f"audit record {seq} ({kind}) is about entry {entry_id}, which has no reserve record",
                       entry_id)
        exp.last_seq = seq
        if kind == "commit":
            exp.status, exp.external_ref = "committed", payload.get("external_ref")
            exp.budget_amount = _money(payload.get("budget_amount")) or exp.budget_amount
        elif kind == "release":
            exp.status = "released"
        elif kind == "refund":
            total, credit = _money(payload.get("refunded_total")), _money(payload.get("credited"))
            if total is not None:
                exp.refunded = total[0]
            if credit is not None:
                exp.refunded_budget += credit[0]
                if isinstance(payload.get("refund_id"), int) and (amount := _money(payload.get("amount"))):
                    self.refunds[int(payload["refund_id"])] = (entry_id, amount[0], credit[0], seq)


def verify_steps(dialect: Dialect, cross_check: bool = True,
                 signatures: SignatureCheck | None = None) -> Steps[VerifyReport]:
    if dialect.name == "postgresql":
        yield Q("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    replay = _Replay() if cross_check else None
    state = _Progress()
    try:
        changed = yield from changed_functions_steps(dialect)
        if changed:
            raise _Bad(None, f"the ledger function(s) {', '.join(changed)} are not the ones this amp-tools installs: "
                             "replaced, and a replaced function can reserve past a cap")
        yield from _legacy_steps(state, replay)
        yield from _chains_steps(state, replay)
        if replay is not None:
            yield from _cross_check_steps(state, replay)
            yield from enforced_steps(dialect, replay.authority, signatures)
    except _Bad as bad:
        return VerifyReport(False, state.records, bad.seq, bad.problem, state.last_seq, state.last_hash,
                            state.chains, state.entries, bad.entry_id)
    last = yield Q("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    head_seq, head_hash = (int(last[0][0]), str(last[0][1])) if last else (0, GENESIS)
    return VerifyReport(True, state.records, None, "", head_seq, head_hash, state.chains, state.entries)


def _check(row: Row, prev: str, n: int | None) -> Any:
    """Check one record's link and hash; returns its parsed payload (parsed once, for the replay too)."""
    seq = int(row[0])
    if str(row[5]) != prev:
        where = f"record {seq - 1}" if n is None else f"record {n - 1} of budget {str(row[3])!r}'s chain"
        raise _Bad(seq, f"record {seq} does not link to {where} (prev_hash differs): "
                        "reordered, replaced or a predecessor was deleted")
    try:
        payload = json.loads(row[4])
    except ValueError:
        raise _Bad(seq, f"record {seq} has a payload that is not JSON: edited") from None
    # Fast path: the ledger stores the payload in canonical JSON, so hashing its text as stored gives
    # the record's hash without serialising it again; any other text takes the full recomputation.
    if n is not None and _text_hash(prev, seq, str(row[1]), str(row[2]), str(row[3]), str(row[4]), n) == str(row[6]):
        return payload
    if record_hash(prev, seq, str(row[1]), str(row[2]), str(row[3]), payload, n) != str(row[6]):
        raise _Bad(seq, f"record {seq} does not match its hash: edited")
    return payload


def _feed(state: _Progress, replay: _Replay | None, row: Row, payload: Any) -> None:
    state.records += 1
    if replay is not None:
        replay.feed(int(row[0]), str(row[1]), str(row[2]), str(row[3]), payload)


def _legacy_steps(state: _Progress, replay: _Replay | None) -> Steps[None]:
    head = yield Q("SELECT seq, hash FROM audit_head WHERE id = 1")
    head_seq, head_hash = (int(head[0][0]), str(head[0][1])) if head else (0, GENESIS)
    expected, prev, last = 1, GENESIS, 0
    while True:
        rows = yield Q(f"SELECT {_COLS} FROM audit WHERE n IS NULL AND seq > ? ORDER BY seq LIMIT ?", (last, _BATCH))
        for row in rows:
            seq = int(row[0])
            if seq > head_seq:
                raise _Bad(seq, f"record {seq} has no chain position and is past the legacy head ({head_seq}): "
                                "appended outside the ledger")
            if seq != expected:
                raise _Bad(expected, f"record {expected} is missing (next stored record is {seq}): deleted")
            _feed(state, replay, row, _check(row, prev, None))
            prev, expected, last = str(row[6]), seq + 1, seq
        if len(rows) < _BATCH:
            break
    if head_seq != last or head_hash != prev:
        if head_seq > last:
            raise _Bad(last + 1, f"the legacy head says {head_seq} records but only {last} remain: tail truncated")
        raise _Bad(head_seq + 1, "the legacy head hash differs from its last record: head edited")


def _chains_steps(state: _Progress, replay: _Replay | None) -> Steps[None]:
    rows = yield Q("SELECT budget_id, n, seq, hash FROM audit_heads")
    heads = {str(r[0]): (int(r[1]), int(r[2]), str(r[3])) for r in rows}
    budget: str | None = None
    n, prev = 0, GENESIS

    def close() -> None:
        if budget is None:
            return
        head_n, head_seq, head_hash = heads.pop(budget, (0, 0, GENESIS))
        if head_n > n:
            raise _Bad(head_seq, f"budget {budget!r}'s head says {head_n} records but only {n} remain: "
                                 "tail truncated")
        if head_n != n or head_hash != prev:
            raise _Bad(head_seq or None, f"budget {budget!r}'s chain does not end at its head: records appended "
                                         "outside the ledger or head edited")

    after: tuple[str, int] | None = None
    while True:
        if after is None:
            rows = yield Q(f"SELECT {_COLS} FROM audit WHERE n IS NOT NULL ORDER BY budget_id, n LIMIT ?", (_BATCH,))
        else:
            rows = yield Q(f"SELECT {_COLS} FROM audit WHERE n IS NOT NULL AND (budget_id > ? OR "
                           "(budget_id = ? AND n > ?)) ORDER BY budget_id, n LIMIT ?",
                           (after[0], after[0], after[1], _BATCH))
        for row in rows:
            seq, row_budget, row_n = int(row[0]), str(row[3]), int(row[7])
            if row_budget != budget:
                close()
                budget, n, prev = row_budget, 0, GENESIS
                state.chains += 1
                if budget not in heads:
                    raise _Bad(seq, f"budget {budget!r}'s chain has no head: written outside the ledger")
            if row_n > heads[budget][0]:
                raise _Bad(seq, f"record {row_n} of budget {budget!r}'s chain is past its head (record "
                                f"{heads[budget][0]}): appended outside the ledger")
            if row_n != n + 1:
                raise _Bad(seq, f"record {n + 1} of budget {budget!r}'s chain is missing (next stored is {row_n}, "
                                f"seq {seq}): deleted")
            _feed(state, replay, row, _check(row, prev, row_n))
            n, prev = row_n, str(row[6])
            state.last_seq, state.last_hash = seq, prev
        if len(rows) < _BATCH:
            break
        after = (str(rows[-1][3]), int(rows[-1][7]))
    close()
    for name, (head_n, head_seq, _hash) in sorted(heads.items()):
        if head_n > 0:
            raise _Bad(head_seq, f"budget {name!r}'s head says {head_n} records but none remain: chain deleted")


_ENTRY_COLS = ("id, budget_id, idempotency_key, action, amount_minor, currency, budget_minor, budget_currency, status, "
               "external_ref, refunded_minor, refunded_budget_minor, counts, counted_minor, last_audit_seq, parents")


def _cross_check_steps(state: _Progress, replay: _Replay) -> Steps[None]:
    totals: dict[str, list[int]] = {}  # budget -> [used_minor, used_count, committed_count] from the entries
    last = 0
    while True:
        rows = yield Q(f"SELECT {_ENTRY_COLS} FROM entries WHERE id > ? ORDER BY id LIMIT ?", (last, _BATCH))
        for row in rows:
            _compare_entry(row, replay.entries.pop(int(row[0]), None))
            state.entries += 1
            # A sub-budget's entry counts in its own budget and in every ancestor's (schema v4 `parents`).
            for budget in (str(row[1]), *(json.loads(row[15]) if row[15] else ())):
                sums = totals.setdefault(str(budget), [0, 0, 0])
                sums[0] += int(row[13])
                sums[1] += int(row[12])
                sums[2] += 1 if str(row[8]) == "committed" and str(row[3]) == "pay" else 0
            last = int(row[0])
        if len(rows) < _BATCH:
            break
    if replay.entries:
        entry_id, exp = min(replay.entries.items())
        raise _Bad(exp.last_seq, f"ledger entry {entry_id} (budget {exp.budget_id!r}, key {exp.key!r}) has audit "
                                 "records but is missing from the ledger: deleted", entry_id)
    yield from _refunds_steps(replay)
    rows = yield Q("SELECT budget_id, used_minor, used_count, committed_count FROM budgets ORDER BY budget_id")
    for row in rows:
        got, want = [int(row[1]), int(row[2]), int(row[3])], totals.pop(str(row[0]), [0, 0, 0])
        if got != want:
            raise _Bad(None, f"budget {str(row[0])!r} totals (used {got[0]} minor units, {got[1]} counting "
                             f"payments, {got[2]} committed) differ from its entries ({want[0]}, {want[1]}, "
                             f"{want[2]}): edited outside the ledger")
    if totals:
        raise _Bad(None, f"entries of budget {min(totals)!r} exist but the budget row is missing: deleted")


def _compare_entry(row: Row, exp: _Expect | None) -> None:
    entry_id = int(row[0])
    if exp is None:
        raise _Bad(None, f"ledger entry {entry_id} has no reserve record in the audit: written outside the ledger",
                   entry_id)
    counts = 1 if exp.action == "pay" and exp.status != "released" else 0
    budget_minor = int(row[6]) if exp.budget_amount is None else exp.budget_amount[0]
    want: dict[str, Any] = {"budget_id": exp.budget_id, "idempotency_key": exp.key, "action": exp.action}
    if exp.amount is not None:
        want.update(amount_minor=exp.amount[0], currency=exp.amount[1])
    if exp.budget_amount is not None:
        want.update(budget_minor=exp.budget_amount[0], budget_currency=exp.budget_amount[1])
    # Derived figures last, so the report names the edited column rather than what follows from it.
    want.update(status=exp.status, external_ref=exp.external_ref, refunded_minor=exp.refunded,
                refunded_budget_minor=exp.refunded_budget, counts=counts,
                counted_minor=(budget_minor - exp.refunded_budget) * counts, last_audit_seq=exp.last_seq)
    got = dict(zip(_ENTRY_COLS.split(", "), row, strict=True))
    for name, value in want.items():
        have = got[name]
        if isinstance(value, int) and have is not None:
            have = int(have)
        if have != value:
            raise _Bad(exp.last_seq, f"ledger entry {entry_id}: {name} is {have!r} but its audit records say "
                                     f"{value!r}: edited outside the ledger", entry_id)


def _refunds_steps(replay: _Replay) -> Steps[None]:
    last = 0
    while True:
        rows = yield Q("SELECT id, entry_id, amount_minor, budget_minor FROM refunds WHERE id > ? ORDER BY id LIMIT ?",
                       (last, _BATCH))
        for row in rows:
            refund_id = int(row[0])
            exp = replay.refunds.pop(refund_id, None)
            got = (int(row[1]), int(row[2]), int(row[3]))
            if exp is None:
                raise _Bad(None, f"refund {refund_id} of entry {got[0]} has no audit record: written outside the "
                                 "ledger", got[0])
            if got != exp[:3]:
                raise _Bad(exp[3], f"refund {refund_id} of entry {got[0]} (amount {got[1]}, credit {got[2]}) differs "
                                   f"from its audit record (amount {exp[1]}, credit {exp[2]}): edited", got[0])
            last = refund_id
        if len(rows) < _BATCH:
            break
    if replay.refunds:
        refund_id, exp = min(replay.refunds.items())
        raise _Bad(exp[3], f"refund {refund_id} of entry {exp[0]} has an audit record but is missing: deleted",
                   exp[0])
