"""The agent's side: act only on the owner's signed authority (when an owner key is pinned).

`OwnerAuthority` is held by the `Guard` of a toolkit given ``owner_key=`` (or
``AMP_TOOLS_OWNER_KEY``). Before each reservation it reads, in one read transaction, the budget's
policy version in force, its signature, the control row (freeze) and its signature, and the usage
figures the guard is about to decide on, and refuses (nothing reserved, nothing sent) when:

* the policy version in force is unsigned, badly signed, not the newest stored version, not the
  version this process already acted on or newer, its text does not hash to the signed hash, or it
  is not the policy this process enforces;
* the budget is frozen (a freeze needs no signature: it only restricts), or it was unfrozen without
  a valid owner signature over that unfreeze;
* the usage buckets over the span the policy's windows and velocity reach back (`usage_days`:
  today for an hourly cap, two UTC days for a day, eight for a week, 32 for a month), for all
  payments, this merchant and this MCC, do not sum to the entries they are derived from, so a
  zeroed bucket cannot loosen a window;
* the all-time figures the total budget and the merchant / MCC caps are decided on
  (``budgets.used_minor`` and the ``usage_totals`` rows) differ from the sums of all their entries
  (`totals_sql`: one index range each, so its cost grows with the budget's history);
* the merchant's ``committed_count`` says it was paid before (so `confirm_new_merchants` would
  not ask) while no committed payment to it exists, or the reverse.

A sub-budget's payment is checked so at every level of its path, each level's buckets and totals
against the entries of every budget it covers (itself and the sub-budgets below it).

After a person's approval is taken, `check_approval` requires the owner's signature over exactly
this payment (budget, level, checkout/binding, amount, currency, merchant, approve, the grant's
id and expiry). Denials and reopenings need no signature here: a denial only restricts, and a
reopened request still needs a signed approval to pay.

What it cannot see at pay time: a rollback to an *older, validly signed* state this process never
saw (audit records deleted and the chain rewritten): `amp-tools audit verify` names it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from amp_tools.errors import PolicyViolation, ToolError
from amp_tools.ledger._sql import Q, Steps, to_us
from amp_tools.ledger.schema import DAY_US, HOUR_US

from .decisions import approval_payload_of
from .keys import OwnerPublicKey, resolve_owner_key
from .payloads import control_payload, policy_payload
from .signing import OwnerSignatureInvalid, UnsignedAuthority, verify

__all__ = ["LedgerTampered", "OwnerAuthority", "authority_status_steps", "owner_authority", "signature_check",
           "signature_status", "totals_sql", "usage_days"]

_SPAN_DAYS = {"hour": 1, "day": 2, "week": 8, "month": 32}  # each window's longest reach back, in UTC days


def usage_days(policy: Any) -> int:
    """How many UTC days back the policy's windows and velocity reach (at least today): the span of
    usage buckets the pay-time check compares with the entries, so its cost follows the policy."""
    days = 1
    windows = getattr(policy, "windows", None)
    for period, _cap in (windows.configured() if windows is not None else ()):
        days = max(days, _SPAN_DAYS.get(str(period), 32))
    velocity = getattr(policy, "velocity", None)
    if velocity is not None:
        from amp_tools.policy.windows import parse_duration

        length = parse_duration(velocity.per)
        days = max(days, -(-int(length.total_seconds()) // 86_400) + 1)
    return days


class LedgerTampered(ToolError):
    """A figure the guard decides on disagrees with the rows it is derived from."""

    code = "LEDGER_TAMPERED"


_BUDGET_SQL = ("SELECT b.policy_version, b.policy_hash, p.policy, p.policy_hash, p.signature, "
               "(SELECT MAX(m.version) FROM budget_policies m WHERE m.budget_id = b.budget_id), "
               "b.signature, c.frozen, c.reason, c.changed_at FROM budgets b "
               "LEFT JOIN budget_policies p ON p.budget_id = b.budget_id AND p.version = b.policy_version "
               "LEFT JOIN budget_controls c ON c.budget_id = b.budget_id WHERE b.budget_id = ?")


_B = ("SELECT COALESCE(SUM(used_minor), 0), COALESCE(SUM(used_count), 0) FROM usage_buckets WHERE budget_id = ? "
      "AND scope = ? AND key = ? AND width = ? AND start >= ?")
# The all-time figures the total and the merchant / MCC caps are decided on (`since` None in `_ops`):
# the budget row and the usage_totals rows (SUM over one primary-key row: zero when it is missing).
_T_ALL = "SELECT COALESCE(SUM(used_minor), 0), COALESCE(SUM(used_count), 0) FROM budgets WHERE budget_id = ?"
_T_KEYED = ("SELECT COALESCE(SUM(used_minor), 0), COALESCE(SUM(used_count), 0) FROM usage_totals WHERE budget_id = ? "
            "AND scope = ? AND key = ?")
_COLUMN = {"merchant": " AND merchant_id = ?", "mcc": " AND mcc = ?"}
# The width column of `_usage_steps`' rows: a bucket width, or one of these tags.
_WINDOW, _EVER, _STORED = 0, -2, -1  # entries since `since`; entries all-time; the stored all-time total
_SEEN = -3  # (stored committed_count of this merchant, 1 if a committed payment to it exists else 0)
_ALL_TIME = -1  # `since` of an all-time entries sum: every created_at is >= 0

#: The levels a payment is checked at: (budget id, the budget ids whose entries count in it: itself and
#: every sub-budget below it, as `BudgetLevel.covers`), the agent's own budget last.
Levels = tuple[tuple[str, tuple[str, ...]], ...]
Figure = tuple[int, str, int, int, int]  # (level index, scope, width or tag, minor units, count)


def _scopes(merchant_id: str, mcc: str | None) -> list[tuple[str, str]]:
    return [("all", ""), ("merchant", merchant_id)] + ([("mcc", mcc)] if mcc else [])


def _entries_sum(scope: str, covers: tuple[str, ...], key: str, since: int) -> tuple[str, list[Any]]:
    """(minor, count) of the counting entries of `covers` in a scope since `since`: one range of the
    partial covering index ``entries_win_all`` / ``_merchant`` / ``_mcc`` per budget covered."""
    who = "budget_id = ?" if len(covers) == 1 else f"budget_id IN ({', '.join('?' * len(covers))})"
    sql = (f"SELECT COALESCE(SUM(counted_minor), 0), COUNT(*) FROM entries WHERE {who} AND counts = 1"
           f"{_COLUMN.get(scope, '')} AND created_at >= ?")
    return sql, [*covers, *([] if scope == "all" else [key]), since]


def totals_sql(levels: Levels, merchant_id: str, mcc: str | None) -> tuple[str, tuple[Any, ...]]:
    """The all-time part of the check: (level, scope, `_EVER` | `_STORED`, minor, count) rows of all
    the entries and of the stored total, per level, for all payments, this merchant and this MCC. The
    entries sums read the levels' whole history (see ``benchmarks/audit_verify.py``); the totals are
    key reads."""
    parts, params = [], []  # type: tuple[list[str], list[Any]]
    for n, (level, covers) in enumerate(levels):
        for scope, key in _scopes(merchant_id, mcc):
            sql, args = _entries_sum(scope, covers, key, _ALL_TIME)
            parts.append(f"SELECT {n}, '{scope}', {_EVER}, a.* FROM ({sql}) a")
            parts.append(f"SELECT {n}, '{scope}', {_STORED}, t.* FROM ({_T_ALL if scope == 'all' else _T_KEYED}) t")
            params += [*args, *([level] if scope == "all" else [level, scope, key])]
    return " UNION ALL ".join(parts), tuple(params)


def _usage_steps(levels: Levels, merchant_id: str, mcc: str | None, since: int) -> Steps[list[Figure]]:
    """Per level, for all payments, this merchant and this MCC: the entries since `since` (`_WINDOW`)
    and the level's hour and day buckets since then, and the all-time rows of `totals_sql`, read in
    one statement (one snapshot: a payment committed meanwhile cannot look like a mismatch)."""
    parts, params = [], []  # type: tuple[list[str], list[Any]]
    for n, (level, covers) in enumerate(levels):
        for scope, key in _scopes(merchant_id, mcc):
            sql, args = _entries_sum(scope, covers, key, since)
            parts.append(f"SELECT {n}, '{scope}', {_WINDOW}, e.* FROM ({sql}) e")
            params += args
            for width in (HOUR_US, DAY_US):
                parts.append(f"SELECT {n}, '{scope}', {width}, b.* FROM ({_B}) b")
                params += [level, scope, key, width, since]
        # Whether the merchant is new to the level (`approval.confirm_new_merchants`) is decided on its
        # committed_count: it must be > 0 exactly when a committed payment to the merchant exists.
        who = ", ".join("?" * len(covers))
        parts.append(f"SELECT {n}, 'seen', {_SEEN}, (SELECT COALESCE(SUM(committed_count), 0) FROM usage_totals "
                     "WHERE budget_id = ? AND scope = 'merchant' AND key = ?), (SELECT COUNT(*) FROM (SELECT 1 AS one "
                     f"FROM entries WHERE budget_id IN ({who}) AND counts = 1 AND merchant_id = ? "
                     "AND action = 'pay' AND status = 'committed' LIMIT 1) s)")
        params += [level, merchant_id, *covers, merchant_id]
    totals, totals_args = totals_sql(levels, merchant_id, mcc)
    rows = yield Q(" UNION ALL ".join([*parts, totals]), (*params, *totals_args))
    return [(int(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows]


def authority_status_steps(budget_id: str) -> Steps[dict[str, Any]]:
    """Whether the budget's policy version in force and its control carry an owner signature
    (not verified: for display, e.g. the console's "unsigned" badge and `budget_status`)."""
    rows = yield Q(_BUDGET_SQL, (budget_id,))
    if not rows:
        return {"signed": False, "policy_signed": False, "control_signed": None}
    row = rows[0]
    control = None if row[7] is None else row[6] is not None
    return {"signed": row[4] is not None and control is not False, "policy_signed": row[4] is not None,
            "control_signed": control}


async def signature_status(ledger: Any, budget_id: str) -> dict[str, Any]:
    """For a display (the console's budget view): ``{"signed", "policy_signed", "control_signed"}``, whether
    the version in force and the control carry an owner signature (present, not verified here)."""
    result: dict[str, Any] = await ledger.run_read(lambda: authority_status_steps(budget_id))
    return result


class OwnerAuthority:
    """The owner's pinned public key and what this process has already seen signed."""

    def __init__(self, key: OwnerPublicKey) -> None:
        self.key = key
        self._versions: dict[str, int] = {}
        self._controls: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"OwnerAuthority(kid={self.key.kid!r})"

    # --------------------------------------------------------------------------- before reserving
    def check_steps(self, *, policy_budget: str, budget_id: str, enforced_hash: str, merchant_id: str,
                    now: datetime, levels: tuple[str, ...] = (), days: int = 32,
                    mcc: str | None = None, covers: Levels = ()) -> Steps[None]:
        """`levels`: every budget whose freeze stops this payment (a sub-budget's ancestors and itself);
        `covers`: every level whose usage decides it, with the budgets counted in it (default: this
        budget alone)."""
        rows = yield Q(_BUDGET_SQL, (policy_budget,))
        self._check_policy(policy_budget, rows[0] if rows else None, enforced_hash)
        for level in dict.fromkeys((*levels, budget_id)):
            if level != policy_budget:
                rows = yield Q(_BUDGET_SQL, (level,))
            self._check_control(level, rows[0] if rows else None)
        now_us = to_us(now)
        since = now_us - now_us % DAY_US - (days - 1) * DAY_US
        checked = covers or ((budget_id, (budget_id,)),)
        figures = yield from _usage_steps(checked, merchant_id, mcc, since)
        self._check_usage(checked, {"merchant": merchant_id, "mcc": mcc or ""}, figures, days)

    def signed_steps(self, *, policy_budget: str, budget_id: str, enforced_hash: str) -> Steps[bool]:
        """Whether the policy in force and the control (if any) hold the owner's valid signatures."""
        rows = yield Q(_BUDGET_SQL, (policy_budget,))
        if budget_id != policy_budget:
            control = yield Q(_BUDGET_SQL, (budget_id,))
        else:
            control = rows
        try:
            self._check_policy(policy_budget, rows[0] if rows else None, enforced_hash)
            if control and control[0][7] is not None and not bool(control[0][7]):
                self._check_control(budget_id, control[0])
        except ToolError:
            return False
        return True

    def _check_policy(self, budget_id: str, row: Any, enforced_hash: str) -> None:
        fix = f"amp-tools owner sign-policy {budget_id}"
        if row is None or row[0] is None:
            raise UnsignedAuthority(
                f"budget {budget_id!r} has no stored policy signed by its owner, and this agent only spends under "
                f"the owner's signed policy (owner key {self.key.kid})",
                hint=f"Ask the owner to run `amp-tools budgets create {budget_id} --policy FILE` with the owner key.")
        version, in_force_hash, text, digest, token, newest = int(row[0]), row[1], row[2], row[3], row[4], row[5]
        what = f"policy version {version} of budget {budget_id!r}"
        verify(self.key, token, policy_payload(budget_id, version, str(digest)), what=what, fix=fix)
        if text is None or hashlib.sha256(str(text).encode("utf-8")).hexdigest() != str(digest) \
                or str(in_force_hash) != str(digest):
            raise OwnerSignatureInvalid(f"{what} was edited after the owner signed it (its text no longer hashes "
                                        "to the signed hash); nothing is paid under it",
                                        hint="Run `amp-tools audit verify` and tell the budget's owner.")
        if newest is not None and int(newest) > version:
            raise OwnerSignatureInvalid(f"{what} is in force but version {int(newest)} exists: the budget was rolled "
                                        "back outside the owner's commands; nothing is paid",
                                        hint="Run `amp-tools audit verify` and tell the budget's owner.")
        if version < self._versions.get(budget_id, 0):
            raise OwnerSignatureInvalid(f"{what} is older than version {self._versions[budget_id]}, which this "
                                        "agent already acted on: rolled back outside the owner's commands",
                                        hint="Run `amp-tools audit verify` and tell the budget's owner.")
        if str(digest) != enforced_hash:
            raise OwnerSignatureInvalid(f"this agent enforces a policy that is not {what}, the one its owner signed; "
                                        "nothing is paid", hint="Restart the agent so it reads the stored policy.")
        self._versions[budget_id] = version

    def _check_control(self, budget_id: str, row: Any) -> None:
        if row is None or row[7] is None:
            return  # never frozen
        frozen, reason, at = bool(row[7]), str(row[8]), int(row[9])
        if frozen:
            raise PolicyViolation(f"budget {budget_id!r} is frozen by its owner ({reason or 'no reason given'}); no "
                                  "payment can be made until the owner unfreezes it", rule="budget.frozen",
                                  hint="Do not retry; tell the user the budget is frozen.")
        verify(self.key, None if row[6] is None else str(row[6]),
               control_payload(budget_id=budget_id, frozen=False, reason=reason, at=at),
               what=f"the unfreeze of budget {budget_id!r}", fix=f"amp-tools budgets unfreeze {budget_id}")
        if at < self._controls.get(budget_id, 0):
            raise OwnerSignatureInvalid(f"the control of budget {budget_id!r} was rolled back to an older unfreeze",
                                        hint="Run `amp-tools audit verify` and tell the budget's owner.")
        self._controls[budget_id] = at

    @staticmethod
    def _check_usage(levels: Levels, keys: dict[str, str], figures: list[Figure], days: int) -> None:
        by_scope: dict[tuple[int, str], dict[int, tuple[int, int]]] = {}
        for n, scope, width, minor, count in figures:
            by_scope.setdefault((n, scope), {})[width] = (minor, count)
        hint = "Run `amp-tools audit verify` and tell the budget's owner."
        for (n, scope), got in by_scope.items():
            budget_id = levels[n][0]
            if scope == "seen":
                recorded, paid = got[_SEEN]
                if (recorded > 0) != (paid > 0):
                    raise LedgerTampered(
                        f"budget {budget_id!r} records {recorded} committed payments to merchant "
                        f"{keys['merchant']!r}, but its entries hold {'none' if not paid else 'at least one'}: "
                        "the ledger was edited outside amp-tools (this decides whether the merchant is new to the "
                        "budget); nothing is paid", hint=hint)
                continue
            what = "all payments" if scope == "all" else f"{scope} {keys.get(scope, '')!r}"
            entries = got.get(_WINDOW, (0, 0))
            for width in (HOUR_US, DAY_US):
                if got.get(width, (0, 0)) != entries:
                    raise LedgerTampered(
                        f"the {'hourly' if width == HOUR_US else 'daily'} usage of budget {budget_id!r} for {what} "
                        f"over the last {days} UTC day(s) says {got.get(width, (0, 0))[0]} minor units in "
                        f"{got.get(width, (0, 0))[1]} payments, but its entries sum to {entries[0]} in "
                        f"{entries[1]}: the ledger was edited outside amp-tools; nothing is paid", hint=hint)
            stored, ever = got.get(_STORED, (0, 0)), got.get(_EVER, (0, 0))
            if stored != ever:
                # The total budget (scope all) and the merchant / MCC caps are decided on these.
                raise LedgerTampered(
                    f"the all-time usage of budget {budget_id!r} for {what} says {stored[0]} minor units in "
                    f"{stored[1]} payments, but its entries sum to {ever[0]} in {ever[1]}: the ledger was edited "
                    "outside amp-tools; nothing is paid", hint=hint)

    # --------------------------------------------------------------------------- after an approval
    def check_approval(self, decision: Any, request: Any, budget_id: str) -> None:
        """Raise unless `decision` (a grant taken from the store) carries the owner's signature over
        exactly `request` (built by this agent from the payment it is about to send) for `budget_id`."""
        approval_id = str(getattr(decision, "approval_id", "") or "")
        expires = getattr(decision, "expires_at", None)
        if not approval_id or expires is None:
            raise UnsignedAuthority(
                f"the approval of this payment came from {getattr(decision, 'approver', '') or 'an approver'} in "
                "this process, not as the owner's signed decision; this agent pays only on the owner's signed "
                f"approvals (owner key {self.key.kid})",
                hint="Use the approval inbox or `amp-tools approvals approve ID` on the owner's side.")
        payload = approval_payload_of(request, approval_id=approval_id, budget_id=budget_id, decision="approve",
                                      expires_at=expires)
        verify(self.key, getattr(decision, "signature", None), payload,
               what=f"the approval {approval_id} for this payment", fix=f"amp-tools approvals approve {approval_id}")


def owner_authority(owner_key: Any = None, env: Any = None) -> OwnerAuthority | None:
    """The authority an agent enforces: from `owner_key` (a JWK dict, JSON text, a file path or an
    `OwnerPublicKey`) or ``AMP_TOOLS_OWNER_KEY``; None when neither is set (unsigned local mode)."""
    key = resolve_owner_key(owner_key, env)
    return None if key is None else OwnerAuthority(key)


def signature_check(key: OwnerPublicKey) -> Any:
    """The check `audit verify --owner-key` hands to the ledger: (what, token, row fields) -> problem."""

    def check(what: str, token: str | None, fields: dict[str, Any]) -> str:
        if what == "policy":
            payload = policy_payload(fields["budget_id"], fields["version"], fields["policy_hash"])
        elif what == "control":
            payload = control_payload(budget_id=fields["budget_id"], frozen=fields["frozen"], reason=fields["reason"],
                                      at=fields["at"])
        else:
            payload = approval_payload_of(fields["request"], approval_id=fields["approval_id"],
                                          budget_id=fields["budget_id"], decision="approve",
                                          expires_at=fields["expires_us"])
        try:
            verify(key, token, payload, what=what, fix="")
        except UnsignedAuthority:
            return f"is not signed by the owner key {key.kid}"
        except OwnerSignatureInvalid as exc:
            return f"has an owner signature that does not hold: {exc.message.split('(', 1)[-1].split(')')[0]}"
        return ""

    return check
