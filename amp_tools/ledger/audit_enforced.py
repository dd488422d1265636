"""The cross-check of the rows the guard reads to decide: usage, approvals and controls.

`audit_verify` replays the audit chains and checks the entries; this module checks what is
*derived* from them or *decided* beside them, each against where it must come from:

* ``usage_totals`` (per merchant and per MCC, all-time) and ``usage_buckets`` (per hour and per
  day, scopes all / merchant / MCC) are recomputed from the entries with a few GROUP BY
  statements (a sub-budget's entry counts in each ancestor, as `_ops._bump` moves them) and
  compared row by row: a zeroed bucket or total is named with its budget, scope, key and window;
* ``budget_controls`` (freeze) must equal the last freeze / unfreeze record of its budget's chain;
* ``approval_requests`` must be in the state its audit records put it in (``consumed`` follows
  ``approved``): a row forged from pending to approved, or a deleted denial, is named by its id;
* ``budget_policies`` rows must match their audit records (version, hash), their text must hash to
  their ``policy_hash``, and ``budgets.policy_version`` must be the newest audited version.

With a `SignatureCheck` (``audit verify --owner-key``) the owner's signatures are verified too: the
policy version in force of every budget, every grant (approved or consumed approval) and every
unfreeze. The check is given by the caller (`amp_tools.owner`): the ledger does not depend on it.

Every check reads in batches or aggregates in SQL; nothing here costs a statement per row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ._sql import Dialect, Q, Steps
from .schema import DAY_US, HOUR_US

__all__ = ["Authority", "SignatureCheck", "Tamper", "enforced_steps"]

#: (what is signed: 'policy' | 'control' | 'approval', the stored JWS or None, the row's fields) -> a
#: problem ("" when the signature holds).
SignatureCheck = Callable[[str, str | None, dict[str, Any]], str]
_POLICY_KINDS = ("budget_create", "budget_adopt", "budget_policy")

_APPROVAL_STATES = {"approval_request": "pending", "approval_expired": "expired", "approval_reopened": "reopened"}
_CONTROL_KINDS = ("budget_freeze", "budget_unfreeze")


class Tamper(Exception):
    """A row disagrees with what it must come from; `seq` and `entry_id` locate it where they can."""

    def __init__(self, seq: int | None, problem: str, entry_id: int | None = None) -> None:
        super().__init__(problem)
        self.seq, self.problem, self.entry_id = seq, problem, entry_id


@dataclass(slots=True)
class _Approval:
    budget_id: str
    binding: str
    status: str
    seq: int


@dataclass(slots=True)
class Authority:
    """What the audit records say about approvals and controls, folded in chain order."""

    approvals: dict[str, _Approval] = field(default_factory=dict)
    controls: dict[str, tuple[bool, str, str, str, int]] = field(default_factory=dict)  # frozen, reason, by, ts, seq
    imported: int = 0
    policies: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)  # (budget, version) -> hash, seq

    def feed(self, seq: int, ts: str, kind: str, budget_id: str, payload: dict[str, Any]) -> None:
        if kind in _POLICY_KINDS and isinstance(payload.get("version"), int):
            self.policies[(budget_id, int(payload["version"]))] = (str(payload.get("policy_hash", "")), seq)
        elif kind in _CONTROL_KINDS:
            self.controls[budget_id] = (kind == "budget_freeze", str(payload.get("reason", "")),
                                        str(payload.get("by", "")), ts, seq)
        elif kind == "approvals_imported":
            self.imported += int(payload.get("count", 0) or 0)
        elif kind.startswith("approval_") and isinstance(payload.get("approval_id"), str):
            approval_id = str(payload["approval_id"])
            if kind == "approval_decision":
                status = "approved" if payload.get("approved") is True else "denied"
            elif kind in _APPROVAL_STATES:
                status = _APPROVAL_STATES[kind]
            else:
                return
            known = self.approvals.get(approval_id)
            if known is None:
                self.approvals[approval_id] = _Approval(budget_id, str(payload.get("binding", "")), status, seq)
            else:
                known.status, known.seq = status, seq


def enforced_steps(dialect: Dialect, authority: Authority, check: SignatureCheck | None = None) -> Steps[None]:
    yield from _totals_steps()
    yield from _buckets_steps()
    yield from _policies_steps(authority, check)
    yield from _controls_steps(authority, check)
    if (yield from _table_exists(dialect, "approval_requests")):
        yield from _approvals_steps(authority, check)
    elif authority.approvals:
        approval_id, exp = min(authority.approvals.items())
        raise Tamper(exp.seq, f"approval {approval_id!r} has audit records but the approval_requests table is "
                              "gone: deleted")


def _table_exists(dialect: Dialect, name: str) -> Steps[bool]:
    if dialect.name == "sqlite":
        rows = yield Q("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    else:
        rows = yield Q("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                       "AND table_name = ?", (name,))
    return bool(rows)


def _levels(budget_id: str, parents: Any) -> tuple[str, ...]:
    if not parents:
        return (budget_id,)
    return (*(str(p) for p in json.loads(parents)), budget_id)


def _when(start_us: int, width: int) -> str:
    start = datetime.fromtimestamp(start_us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"{'hour' if width == HOUR_US else 'day'} from {start}"


def _totals_steps() -> Steps[None]:
    rows = yield Q("SELECT budget_id, parents, merchant_id, mcc, SUM(counted_minor), SUM(counts), "
                   "SUM(CASE WHEN status = 'committed' THEN 1 ELSE 0 END) FROM entries WHERE action = 'pay' "
                   "GROUP BY budget_id, parents, merchant_id, mcc")
    want: dict[tuple[str, str, str], list[int]] = {}
    for budget_id, parents, merchant_id, mcc, minor, count, committed in rows:
        for level in _levels(str(budget_id), parents):
            for scope, key in (("merchant", merchant_id), ("mcc", mcc)):
                if key is None:
                    continue
                sums = want.setdefault((level, scope, str(key)), [0, 0, 0])
                sums[0] += int(minor)
                sums[1] += int(count)
                sums[2] += int(committed)
    stored = yield Q("SELECT budget_id, scope, key, used_minor, used_count, committed_count FROM usage_totals")
    have = {(str(r[0]), str(r[1]), str(r[2])): [int(r[3]), int(r[4]), int(r[5])] for r in stored}
    for where in sorted(want.keys() | have.keys()):
        got, exp = have.get(where, [0, 0, 0]), want.get(where, [0, 0, 0])
        if got != exp:
            budget, scope, key = where
            raise Tamper(None, f"usage total of budget {budget!r} for {scope} {key!r} holds used {got[0]} minor "
                               f"units, {got[1]} counting and {got[2]} committed payments, but its entries sum to "
                               f"{exp[0]}, {exp[1]} and {exp[2]}: edited outside the ledger")


def _buckets_steps() -> Steps[None]:
    rows = yield Q(f"SELECT budget_id, parents, merchant_id, mcc, created_at - created_at % {HOUR_US}, "
                   "SUM(counted_minor), COUNT(*) FROM entries WHERE counts = 1 "
                   f"GROUP BY budget_id, parents, merchant_id, mcc, created_at - created_at % {HOUR_US}")
    want: dict[tuple[str, str, str, int, int], list[int]] = {}
    for budget_id, parents, merchant_id, mcc, hour, minor, count in rows:
        hour = int(hour)
        day = hour - hour % DAY_US
        keys = [("all", ""), ("merchant", str(merchant_id))] + ([("mcc", str(mcc))] if mcc is not None else [])
        for level in _levels(str(budget_id), parents):
            for scope, key in keys:
                for width, start in ((HOUR_US, hour), (DAY_US, day)):
                    sums = want.setdefault((level, scope, key, width, start), [0, 0])
                    sums[0] += int(minor)
                    sums[1] += int(count)
    stored = yield Q("SELECT budget_id, scope, key, width, start, used_minor, used_count FROM usage_buckets "
                     "WHERE used_minor <> 0 OR used_count <> 0")
    have = {(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4])): [int(r[5]), int(r[6])] for r in stored}
    want = {k: v for k, v in want.items() if v != [0, 0]}
    if have == want:
        return
    for where in sorted(want.keys() | have.keys()):
        got, exp = have.get(where, [0, 0]), want.get(where, [0, 0])
        if got != exp:
            budget, scope, key, width, start = where
            what = "all payments" if scope == "all" else f"{scope} {key!r}"
            raise Tamper(None, f"usage bucket of budget {budget!r} for {what}, {_when(start, width)}, holds "
                               f"{got[0]} minor units in {got[1]} payments, but its entries sum to {exp[0]} in "
                               f"{exp[1]}: edited outside the ledger (the guard reads these to decide)")


def _policies_steps(authority: Authority, check: SignatureCheck | None) -> Steps[None]:
    rows = yield Q("SELECT p.budget_id, p.version, p.policy, p.policy_hash, p.signature, b.policy_version "
                   "FROM budget_policies p LEFT JOIN budgets b ON b.budget_id = p.budget_id "
                   "ORDER BY p.budget_id, p.version")
    newest: dict[str, int] = {}
    in_force: dict[str, int | None] = {}
    for budget_id, version, text, digest, token, current in rows:
        budget, number = str(budget_id), int(version)
        what = f"policy version {number} of budget {budget!r}"
        exp = authority.policies.pop((budget, number), None)
        if exp is None:
            raise Tamper(None, f"{what} has no audit record: written outside the ledger")
        if str(digest) != exp[0]:
            raise Tamper(exp[1], f"{what} has policy_hash {str(digest)[:12]}... but its audit record (seq {exp[1]}) "
                                 f"says {exp[0][:12]}...: edited outside the ledger")
        if hashlib.sha256(str(text).encode("utf-8")).hexdigest() != exp[0]:
            raise Tamper(exp[1], f"{what}: its policy text does not hash to its audited policy_hash: limits edited "
                                 "outside the ledger")
        newest[budget] = max(newest.get(budget, 0), number)
        in_force[budget] = None if current is None else int(current)
        if check is not None and current is not None and int(current) == number:
            problem = check("policy", None if token is None else str(token),
                            {"budget_id": budget, "version": number, "policy_hash": exp[0]})
            if problem:
                raise Tamper(exp[1], f"{what} (in force) {problem}")
    if authority.policies:
        (budget, number), exp = min(authority.policies.items())
        raise Tamper(exp[1], f"policy version {number} of budget {budget!r} has an audit record (seq {exp[1]}) but "
                             "its row is missing: deleted outside the ledger")
    for budget, number in sorted(newest.items()):
        if in_force[budget] != number:
            raise Tamper(None, f"budget {budget!r} is set to policy version {in_force[budget]} but its newest audited "
                               f"version is {number}: rolled back outside the ledger")


def _controls_steps(authority: Authority, check: SignatureCheck | None) -> Steps[None]:
    rows = yield Q("SELECT c.budget_id, c.frozen, c.reason, c.changed_by, c.changed_at, b.signature "
                   "FROM budget_controls c LEFT JOIN budgets b ON b.budget_id = c.budget_id ORDER BY c.budget_id")
    seen: set[str] = set()
    for budget_id, frozen, reason, by, changed_at, token in rows:
        budget = str(budget_id)
        seen.add(budget)
        exp = authority.controls.get(budget)
        if exp is None:
            raise Tamper(None, f"the control row of budget {budget!r} (frozen={bool(frozen)}) has no freeze or "
                               "unfreeze record in the audit: written outside the ledger")
        if (bool(frozen), str(reason), str(by)) != exp[:3]:
            raise Tamper(exp[4], f"the control row of budget {budget!r} says frozen={bool(frozen)} (reason "
                                 f"{str(reason)!r}, by {str(by)!r}) but its last audit record (seq {exp[4]}) says "
                                 f"frozen={exp[0]} (reason {exp[1]!r}, by {exp[2]!r}): edited outside the ledger")
        if check is not None and not frozen:
            problem = check("control", None if token is None else str(token),
                            {"budget_id": budget, "frozen": False, "reason": str(reason), "at": int(changed_at)})
            if problem:
                raise Tamper(exp[4], f"the unfreeze of budget {budget!r} {problem}")
    for budget, exp in sorted(authority.controls.items()):
        if budget not in seen and exp[0]:
            raise Tamper(exp[4], f"budget {budget!r} was frozen (audit seq {exp[4]}) but its control row is "
                                 "missing: deleted outside the ledger")


def _approvals_steps(authority: Authority, check: SignatureCheck | None) -> Steps[None]:
    rows = yield Q("SELECT r.id, r.budget_id, r.binding, r.status, r.request, r.expires_us, s.signature "
                   "FROM approval_requests r LEFT JOIN approval_signatures s ON s.approval_id = r.id "
                   "AND s.decision = 'approve' ORDER BY r.id")
    unaudited = 0
    for approval_id, budget_id, binding, status, request, expires_us, token in rows:
        key = str(approval_id)
        exp = authority.approvals.pop(key, None)
        if exp is None:
            unaudited += 1
            if unaudited > authority.imported:  # rows copied from an old approvals.db have one record in all
                raise Tamper(None, f"approval {key!r} (budget {str(budget_id)!r}, status {str(status)!r}) has no "
                                   "audit record: written outside the ledger")
            continue
        ok = str(status) == exp.status or (str(status) == "consumed" and exp.status == "approved")
        if not ok:
            raise Tamper(exp.seq, f"approval {key!r} of budget {exp.budget_id!r} is {str(status)!r} but its audit "
                                  f"records say {exp.status!r}: edited outside the ledger")
        if (str(budget_id), str(binding)) != (exp.budget_id, exp.binding):
            raise Tamper(exp.seq, f"approval {key!r} belongs to budget {str(budget_id)!r} with binding "
                                  f"{str(binding)[:12]}... but its audit records say budget {exp.budget_id!r}, "
                                  f"binding {exp.binding[:12]}...: edited outside the ledger")
        if check is not None and str(status) in ("approved", "consumed"):
            problem = check("approval", None if token is None else str(token),
                            {"approval_id": key, "budget_id": exp.budget_id, "request": json.loads(str(request)),
                             "expires_us": int(expires_us)})
            if problem:
                raise Tamper(exp.seq, f"the grant of approval {key!r} (budget {exp.budget_id!r}) {problem}")
    if authority.approvals:
        approval_id, exp = min(authority.approvals.items())
        raise Tamper(exp.seq, f"approval {approval_id!r} of budget {exp.budget_id!r} ({exp.status}) has audit "
                              "records but its row is missing: deleted outside the ledger")
