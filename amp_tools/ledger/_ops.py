"""The ledger's money logic, once, as sans-I/O step generators (see `_sql`).

Usage accounting. An entry *counts* (``counts = 1``) while it is a ``pay`` entry that is reserved
or committed; ``counted_minor`` is what it adds to usage in budget currency: ``budget_minor`` less
the budget-currency share of its refunds. Three running aggregates change in the same transaction
as the entry: ``budgets`` (all-time total and count per budget) and ``usage_totals`` (per merchant
and per MCC). Answering a query therefore costs:

* all-time (``since`` None), any scope: one primary-key lookup, O(1);
* windowed (``created_at >= since``): one statement over three disjoint pieces of ``[since, oo)``:
  the raw entries of the partial hour ``[since, next whole UTC hour)`` (a range scan of one of
  three partial covering indexes, ``WHERE counts = 1``, keyed ``budget_id[, merchant_id | mcc],
  created_at``), the hour buckets up to the next whole UTC day, and the day buckets from there
  on. ``usage_buckets`` holds, per (budget, scope, key) and per UTC hour and UTC day, the sum of
  ``counted_minor`` and the number of counting entries; at most ~1 hour of rows + 23 hour
  buckets + one bucket per day of the window are read (a 30-day window: ~55 index reads),
  whatever the history size. Non-aligned window starts (rolling windows, calendar windows in
  Asia/Kolkata +05:30) are exact because the partial hour is summed from rows.

The aggregate writes of one entry change touch separate rows (one budget row, its per-merchant and
per-MCC totals, its hour and day buckets, per level) and are marked ``merge``, as are the audit
record's two writes: PostgreSQL sends such a run as one statement.

Buckets move in the same transaction as the entry and always in the bucket of the entry's
*original* ``created_at``: a release or a refund lowers the hour/day the payment was counted in,
never the hour of the release, so a window can never count a payment out before it counted it
in (which would undercount and let a rolling window overspend).

Counts (velocity) include entries later refunded in full: a refund gives money back, not the
attempt. Refunds are credited in the entry's own currency and converted to budget currency
proportionally on the cumulative refunded amount, rounded down (a credit is never overstated;
a full refund returns exactly ``budget_minor``, so no rounding residue is left behind).

Idempotency. At most one *live* (reserved or committed) entry exists per (budget, key), enforced
by a partial unique index. A released key may be reserved again: the new row keeps the key with
``attempt`` + 1, so the released history stays in place. Lock order is always
budget row -> entry row -> the budget's audit head, so PostgreSQL transactions cannot deadlock (a
reserve takes the head before inserting its entry: a new row nobody else can hold, as the unique
keys all start with the budget already locked). Each budget has its own audit chain and head
(see `audit`), so writes to separate budgets share no lock.

Statements. On SQLite a reserve is 11 statements in two parts: first the reads (create-or-lock the
budget with one upsert and RETURNING, the key's latest attempt, the freeze, every usage figure plus
``merchant_seen`` in one UNION ALL statement, the audit head), then, after the decision in Python,
the entry INSERT (written with its audit seq; the returned `Entry` is built from the very values
written), three aggregate upserts and two audit writes. A commit, release or transition locks the
budget, the entry and the audit head, then writes the aggregates, the audit record and the entry,
and hands back the locked entry with what it set. On PostgreSQL a reserve, a commit and a lifecycle
transition are each one call of a server function instead (``amp_reserve``, ``amp_commit``,
``amp_transition``; see `_reserve_fn` and `_commit_fn`): the same locks, checks and writes, its own
transaction, one round trip. The rules stay here and in the policy: the functions take the limits
as bounds from `decide.caps` and answer, unwritten, what `commit_refusal`, `commit_checks` and `transition_refused`
must judge. The generators below still serve PostgreSQL for a release, a refund, a reservation of
a refund or of a payment the history-free rules refuse, or a policy engine without `caps`: reads in
one batch, writes pipelined and merged (one round trip plus the COMMIT).

Sub-budgets (a `PathLike`, see `amp_tools.policy.subbudgets`). An agent's entry is written once, in
its own budget (``crew/agent``), with its ancestors in ``parents`` and the root in ``root_id``. A
reserve locks every level's budget row root to leaf and answers each level's figures, the
partial-hour rows summed over ``budget_id IN (the level and its descendants)`` (one index range
each) and the rest from that level's own aggregates, which every entry below it moves too (one set
of aggregate upserts per level, same transaction). Every later change of such an entry locks the
root first (``COALESCE(root_id, budget_id)``), so the lock order stays root -> leaf -> entry ->
audit head. A budget without sub-budgets runs exactly the statements described above.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from amp_tools.errors import ConfigError, CurrencyMismatch, InvalidArguments, NotFound, PolicyViolation
from amp_tools.money import Money

from ._engine import IntentLike, PathLike, PolicyEngine, PolicyLike, QueryLike
from ._sql import Dialect, Q, Row, Steps, batch_steps, from_us, to_us
from .audit import (
    GENESIS,
    ChainHead,
    canonical_json,
    head_from_rows,
    head_query,
    lock_head_steps,
    redact,
    write_record_steps,
)
from .controls import frozen_query, refuse_if_frozen
from .records import (
    ENTRY_COLUMNS,
    MOVE_REFUSED,
    AlreadyCommitted,
    Entry,
    InvalidTransition,
    Refund,
    Reservation,
    entry_from_row,
)
from .schema import DAY_US, HOUR_US

__all__ = ["commit_checks", "commit_refusal", "commit_steps", "committed_already", "entries_steps",
           "get_by_key_steps", "get_steps", "heartbeat_steps", "refund_steps", "release_steps", "reserve_steps",
           "state_of_entry", "totals_steps", "transition_refused", "transition_steps", "tree_steps"]

_ACTIONS = ("pay", "refund")
#: The rule of a reservation refused because the process enforces another policy than the budget's stored one.
POLICY_CHANGED_RULE = "budget.policy_changed"
_EPOCH_DT = from_us(0)  # any datetime: `_figure_part` only needs to know a window is windowed


def _text(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise InvalidArguments(f"{name} {value!r} must be a non-empty string")
    return value


def _validate_intent(intent: IntentLike, policy: PolicyLike) -> None:
    if intent.action not in _ACTIONS:
        raise InvalidArguments(f"intent action {intent.action!r} must be one of {_ACTIONS}")
    _text("merchant_id", intent.merchant_id)
    _text("checkout_id", intent.checkout_id)
    if not intent.amount.is_positive() or not intent.budget_amount.is_positive():
        raise InvalidArguments(f"intent amount {intent.amount} / budget amount {intent.budget_amount} must be positive")
    if intent.budget_amount.currency != policy.currency:
        raise CurrencyMismatch(f"intent budget amount {intent.budget_amount} is not in the policy currency "
                               f"{policy.currency}; convert it with ROUND_UP first")
    if intent.amount.currency == intent.budget_amount.currency and intent.amount != intent.budget_amount:
        raise InvalidArguments(f"amount {intent.amount} and budget amount {intent.budget_amount} share a currency "
                               "but differ; they must be equal")


# ------------------------------------------------------------------------------------------ reads
def _entry(dialect: Dialect, entry_id: int, *, lock: bool = False) -> Steps[Entry]:
    rows = yield Q(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?{dialect.for_update if lock else ''}",
                   (entry_id,))
    if not rows:
        raise NotFound(f"ledger entry {entry_id} does not exist; use an id returned by reserve")
    return entry_from_row(rows[0])


def get_steps(dialect: Dialect, entry_id: int) -> Steps[Entry]:
    return (yield from _entry(dialect, entry_id))


def _latest_by_key_query(budget_id: str, key: str) -> Q:
    return Q(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE budget_id = ? AND idempotency_key = ? "
             "ORDER BY attempt DESC LIMIT 1", (budget_id, key))


def _latest_by_key(budget_id: str, key: str) -> Steps[Entry | None]:
    rows = yield _latest_by_key_query(budget_id, key)
    return entry_from_row(rows[0]) if rows else None


def get_by_key_steps(budget_id: str, key: str) -> Steps[Entry | None]:
    return (yield from _latest_by_key(budget_id, key))


def entries_steps(budget_id: str | None, limit: int) -> Steps[list[Entry]]:
    if budget_id is None:
        rows = yield Q(f"SELECT {ENTRY_COLUMNS} FROM entries ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = yield Q(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE budget_id = ? ORDER BY id DESC LIMIT ?",
                       (budget_id, limit))
    return [entry_from_row(r) for r in rows]


def refunds_steps(entry_id: int) -> Steps[list[Refund]]:
    rows = yield Q("SELECT id, entry_id, amount_minor, currency, budget_minor, budget_currency, external_ref, "
                   "created_at, audit_seq FROM refunds WHERE entry_id = ? ORDER BY id", (entry_id,))
    return [Refund(int(r[0]), int(r[1]), Money(int(r[2]), str(r[3])), Money(int(r[4]), str(r[5])), str(r[6]),
                   from_us(int(r[7])), int(r[8] or 0)) for r in rows]


# ------------------------------------------------------------------------------------------ usage
_SCOPE_COND = {"all": "", "merchant": " AND merchant_id = ?", "mcc": " AND mcc = ?"}


def _window_sql(scope: str, covers: int = 1) -> str:
    # A level with sub-budgets sums the partial hour over its own rows and every descendant's
    # (`budget_id IN (...)`: one index range per budget); its buckets already hold theirs.
    who = "budget_id = ?" if covers == 1 else f"budget_id IN ({', '.join('?' * covers)})"
    return ("SELECT COALESCE(SUM(m), 0), COALESCE(SUM(c), 0) FROM ("
            f"SELECT counted_minor AS m, 1 AS c FROM entries WHERE {who} AND counts = 1{_SCOPE_COND[scope]} "
            "AND created_at >= ? AND created_at < ? "
            "UNION ALL SELECT used_minor, used_count FROM usage_buckets WHERE budget_id = ? AND scope = ? AND key = ? "
            "AND width = ? AND start >= ? AND start < ? "
            "UNION ALL SELECT used_minor, used_count FROM usage_buckets WHERE budget_id = ? AND scope = ? AND key = ? "
            "AND width = ? AND start >= ?) AS w")


#: (sum, count) of a scope's counting entries with ``created_at >= since``; see the module docstring.
WINDOW_SQL = {scope: _window_sql(scope) for scope in _SCOPE_COND}


def window_params(budget_id: str, scope: str, key: str | None, since_us: int,
                  covers: tuple[str, ...] | None = None) -> tuple[Any, ...]:
    """Parameters of `WINDOW_SQL[scope]`: rows in [since, hour0), hour buckets in [hour0, day0), days >= day0."""
    hour0 = -(-since_us // HOUR_US) * HOUR_US  # ceilings: an aligned `since` reads no raw rows
    day0 = -(-since_us // DAY_US) * DAY_US
    bucket_key = key or ""
    who = covers if covers else (budget_id,)
    raw = (*who, since_us, hour0) if scope == "all" else (*who, key, since_us, hour0)
    return (*raw, budget_id, scope, bucket_key, HOUR_US, hour0, day0, budget_id, scope, bucket_key, DAY_US, day0)


def figure_steps(budget_id: str, scope: str, key: str | None, since: datetime | None,
                 covers: tuple[str, ...] | None = None) -> Steps[tuple[int, int]]:
    """(minor, count) of counting entries of a scope since `since` (None = all time); `covers`: the
    budget ids whose entries count here when the budget has sub-budgets (itself first)."""
    if scope not in WINDOW_SQL:
        raise ConfigError(f"usage query scope {scope!r} must be 'all', 'merchant' or 'mcc'")
    if scope != "all" and key is None:
        return 0, 0
    if since is None:
        if scope == "all":
            rows = yield Q("SELECT used_minor, used_count FROM budgets WHERE budget_id = ?", (budget_id,))
        else:
            rows = yield Q("SELECT used_minor, used_count FROM usage_totals WHERE budget_id = ? AND scope = ? "
                           "AND key = ?", (budget_id, scope, key))
    else:
        sql = WINDOW_SQL[scope] if not covers or len(covers) == 1 else _window_sql(scope, len(covers))
        rows = yield Q(sql, window_params(budget_id, scope, key, to_us(since), covers))
    return (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)


def _figure_part(tag: int, scope: str, key: str | None, since: datetime | None,
                 covers: int = 1) -> tuple[str, tuple[Any, ...]]:
    """One tagged SELECT of the usage batch: (tag, minor, count) of one figure."""
    if since is None:
        if scope == "all":
            return f"SELECT {tag}, used_minor, used_count FROM budgets WHERE budget_id = ?", ()
        return (f"SELECT {tag}, used_minor, used_count FROM usage_totals WHERE budget_id = ? AND scope = ? "
                "AND key = ?", (scope, key))
    sql = _window_sql(scope, covers).replace("SELECT COALESCE", f"SELECT {tag}, COALESCE", 1)
    sql = sql.replace(" AS w", f" AS w{tag}")
    return sql, ()


_BATCH_SQL: dict[tuple[int, tuple[tuple[str, bool], ...]], str] = {}


_Ident = tuple[str, str | None, datetime | None]


def _usage_query(budget_id: str, queries: Sequence[QueryLike], merchant_id: str,
                 covers: tuple[str, ...] | None = None) -> tuple[Q, list[_Ident]]:
    """Every figure the policy asks for, plus `merchant_seen`, in one statement (one round trip);
    `_usage_from_rows` turns its answer into the policy's `Usage`."""
    idents: list[_Ident] = []
    for query in queries:
        if query.scope not in WINDOW_SQL:
            raise ConfigError(f"usage query scope {query.scope!r} must be 'all', 'merchant' or 'mcc'")
        ident = (query.scope, query.key, query.since)
        if ident not in idents and (query.scope == "all" or query.key is not None):
            idents.append(ident)
    width = len(covers) if covers else 1
    shape = tuple((scope, since is None) for scope, _key, since in idents)
    sql = _BATCH_SQL.get((width, shape))
    if sql is None:  # the text depends only on the shape, so engines reuse their prepared statement
        parts = [_figure_part(tag, scope, "", None if all_time else _EPOCH_DT, width)[0]
                 for tag, (scope, all_time) in enumerate(shape)]
        parts.append("SELECT -1, committed_count, 0 FROM usage_totals WHERE budget_id = ? AND scope = 'merchant' "
                     "AND key = ?")
        sql = _BATCH_SQL.setdefault((width, shape), " UNION ALL ".join(parts))
    params: tuple[Any, ...] = ()
    for scope, key, since in idents:
        if since is None:
            params += (budget_id,) if scope == "all" else (budget_id, scope, key)
        else:
            params += window_params(budget_id, scope, key, to_us(since), covers)
    return Q(sql, (*params, budget_id, merchant_id)), idents


def _usage_steps(engine: PolicyEngine, budget_id: str, currency: str, queries: Sequence[QueryLike],
                 merchant_id: str, covers: tuple[str, ...] | None = None) -> Steps[Any]:
    """`_usage_query` run on its own, its answer as the policy's `Usage`."""
    query, idents = _usage_query(budget_id, queries, merchant_id, covers)
    rows = yield query
    return _usage_from_rows(engine, currency, queries, idents, rows)


def _usage_from_rows(engine: PolicyEngine, currency: str, queries: Sequence[QueryLike], idents: list[_Ident],
                     rows: list[Row]) -> Any:
    found = {int(r[0]): (int(r[1]), int(r[2])) for r in rows}
    figures: dict[str, Any] = {}
    for query in queries:
        ident = (query.scope, query.key, query.since)
        minor, count = found.get(idents.index(ident), (0, 0)) if ident in idents else (0, 0)
        figures[query.name] = engine.UsageFigure(name=query.name, amount=Money(minor, currency), count=count)
    seen = found.get(-1)
    return engine.Usage(figures=figures, merchant_seen=bool(seen and seen[0] > 0))


_TOTALS_UPSERT = ("INSERT INTO usage_totals (budget_id, scope, key, label, used_minor, used_count, committed_count) "
                  "VALUES {values} ON CONFLICT (budget_id, scope, key) DO UPDATE SET "
                  "used_minor = usage_totals.used_minor + excluded.used_minor, "
                  "used_count = usage_totals.used_count + excluded.used_count, "
                  "committed_count = usage_totals.committed_count + excluded.committed_count")
_BUCKETS_UPSERT = ("INSERT INTO usage_buckets (budget_id, scope, key, width, start, used_minor, used_count) "
                   "VALUES {values} ON CONFLICT (budget_id, scope, key, width, start) DO UPDATE SET "
                   "used_minor = usage_buckets.used_minor + excluded.used_minor, "
                   "used_count = usage_buckets.used_count + excluded.used_count")
#: The statement texts by row count, built once (identical text also reuses the engines' prepared statements).
_TOTALS_SQL = {n: _TOTALS_UPSERT.format(values=", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * n)) for n in (1, 2)}
_BUCKETS_SQL = {n: _BUCKETS_UPSERT.format(values=", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * n)) for n in (4, 6)}


def _bump(budget_id: str, merchant_id: str, merchant_name: str, mcc: str | None, created_us: int, minor: int,
          count: int, committed: int, parents: tuple[str, ...] = ()) -> Steps[None]:
    """Move the running aggregates by the given deltas (same transaction as the entry change).

    `created_us` is the entry's own creation time: its buckets are the ones it was counted in.
    An entry of a sub-budget moves every ancestor's aggregates too (`parents`, root first), so
    each level's figures include its descendants' spending.
    """
    for level in (*parents, budget_id) if parents else (budget_id,):
        yield from _bump_one(level, merchant_id, merchant_name, mcc, created_us, minor, count, committed)


def _bump_one(budget_id: str, merchant_id: str, merchant_name: str, mcc: str | None, created_us: int, minor: int,
              count: int, committed: int) -> Steps[None]:
    yield Q("UPDATE budgets SET used_minor = used_minor + ?, used_count = used_count + ?, "
            "committed_count = committed_count + ? WHERE budget_id = ?", (minor, count, committed, budget_id),
            nowait=True, merge=True)
    totals: tuple[Any, ...] = (budget_id, "merchant", merchant_id, merchant_name, minor, count, committed)
    if mcc is not None:
        totals += (budget_id, "mcc", mcc, None, minor, count, committed)
    yield Q(_TOTALS_SQL[len(totals) // 7], totals, nowait=True, merge=True)
    if not minor and not count:
        return  # a commit moves no window figure
    hour, day = created_us - created_us % HOUR_US, created_us - created_us % DAY_US
    buckets: tuple[Any, ...] = ()
    for scope, key in (("all", ""), ("merchant", merchant_id)) + ((("mcc", mcc),) if mcc is not None else ()):
        buckets += (budget_id, scope, key, HOUR_US, hour, minor, count,
                    budget_id, scope, key, DAY_US, day, minor, count)
    yield Q(_BUCKETS_SQL[len(buckets) // 7], buckets, nowait=True, merge=True)


def _lock_budget_query(budget_id: str, currency: str, now_us: int, *, parent: str | None = None) -> Q:
    """Create-or-lock a budget row; `_check_currency` reads the answer (its currency and stored policy hash)."""
    if parent is not None:
        return Q("INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at, "
                 "parent) VALUES (?, ?, 0, 0, 0, ?, ?) ON CONFLICT (budget_id) DO UPDATE SET "
                 "parent = excluded.parent RETURNING currency, policy_hash", (budget_id, currency, now_us, parent))
    # Create-or-lock in one statement: DO UPDATE (a no-op assignment) takes the row lock on
    # PostgreSQL like SELECT ... FOR UPDATE, and RETURNING hands back the stored currency.
    return Q("INSERT INTO budgets (budget_id, currency, used_minor, used_count, committed_count, created_at) "
             "VALUES (?, ?, 0, 0, 0, ?) ON CONFLICT (budget_id) DO UPDATE SET currency = budgets.currency "
             "RETURNING currency, policy_hash", (budget_id, currency, now_us))


def _lock_budget(dialect: Dialect, budget_id: str, currency: str, now_us: int, *, create: bool,
                 parent: str | None = None) -> Steps[str | None]:
    """Create-or-lock the budget row on its own; returns the hash of its stored policy (None: not a stored budget)."""
    if create:
        rows = yield _lock_budget_query(budget_id, currency, now_us, parent=parent)
    else:
        rows = yield Q(f"SELECT currency, policy_hash FROM budgets WHERE budget_id = ?{dialect.for_update}",
                       (budget_id,))
    return _check_currency(budget_id, currency, rows)


def _check_currency(budget_id: str, currency: str, rows: list[Row]) -> str | None:
    """Refuse a budget kept in another currency; returns its stored policy hash (None: not a stored budget)."""
    if rows and str(rows[0][0]) != currency:
        raise ConfigError(f"budget {budget_id!r} is kept in {rows[0][0]} but the policy currency is {currency}; "
                          "use another budget_id for a policy in another currency")
    return None if not rows or rows[0][1] is None else str(rows[0][1])


def _refuse_other_policy(budget_id: str, stored_hash: str | None, given_hash: str) -> None:
    """A stored budget is spent only under its stored policy: a process holding another (an older
    version, or a file of its own) is refused, under the budget row lock, before anything is written."""
    if stored_hash is not None and stored_hash != given_hash:
        raise PolicyViolation(
            f"budget {budget_id!r} is governed by its stored policy, which is not the policy this process "
            "enforces (the owner changed it, or this process brought its own); nothing was reserved",
            rule=POLICY_CHANGED_RULE,
            hint="Restart the agent so it reads the budget's stored policy, then try again.",
            details={"budget_id": budget_id})


_HASHES: dict[int, tuple[Any, str]] = {}


def _policy_hash(policy: PolicyLike) -> str:
    """`snapshot_hash()` (a full JSON dump and sha256) once per frozen policy object, not per reserve."""
    config = getattr(policy, "model_config", None)
    if not isinstance(config, dict) or not config.get("frozen"):
        return policy.snapshot_hash()
    hit = _HASHES.get(id(policy))
    if hit is None or hit[0] is not policy:  # the object itself is kept, so its id cannot be reused
        if len(_HASHES) > 64:
            _HASHES.clear()
        hit = _HASHES[id(policy)] = (policy, policy.snapshot_hash())
    return hit[1]


def _decision(verdict: Any) -> dict[str, Any]:
    left = getattr(verdict, "budget_left", None)
    return {"approval_reasons": list(getattr(verdict, "approval_reasons", ())),
            "checked_rules": list(getattr(verdict, "checked_rules", getattr(verdict, "rule_texts", ()))),
            "budget_left": None if left is None else {"minor": left.minor, "currency": left.currency}}


def _same_payment(entry: Entry, intent: IntentLike) -> None:
    if (entry.merchant_id, entry.amount, entry.checkout_id, entry.action) != (
            intent.merchant_id, intent.amount, intent.checkout_id, intent.action):
        raise InvalidArguments(
            f"idempotency key {entry.idempotency_key!r} already belongs to entry {entry.id} "
            f"({entry.action} {entry.amount} at {entry.merchant_id}, checkout {entry.checkout_id}); "
            "derive a new key for a different payment")


# ------------------------------------------------------------------------------------------ writes
def reserve_steps(dialect: Dialect, engine: PolicyEngine, policy: PolicyLike, intent: IntentLike, *,
                  budget_id: str, idempotency_key: str, run_id: str, now: datetime, owner: str | None = None,
                  lease_until: datetime | None = None, path: PathLike | None = None) -> Steps[Reservation]:
    """Atomic check-and-reserve (see the module docstring); the new entry is in phase 'reserved',
    held by `owner` until `lease_until` (renewed by `heartbeat_steps` while the owner works on it).

    With `path` (a budget with sub-budgets, `amp_tools.policy.subbudgets.BudgetPath`) every level is
    locked root to leaf, checked on its own usage (its descendants' included) in this transaction,
    and the entry is written once, in the leaf's budget, with its ancestors; every level's
    aggregates move with it.

    Two batches: the locks and every read the decision needs (budget rows root to leaf, the key's
    latest attempt, the freeze, each level's usage figures, the audit head, and on PostgreSQL the
    new entry's id), then, once the policy has decided in Python, every write. A statement of a
    batch starts only when the one before it has finished, so the reads see everything committed
    before the budget locks were granted."""
    _text("budget_id", budget_id)
    _text("idempotency_key", idempotency_key)
    _text("run_id", run_id, allow_empty=True)
    _validate_intent(intent, policy)
    now_us, currency = to_us(now), policy.currency
    parents: tuple[str, ...] = ()
    plans: list[tuple[str, list[QueryLike], tuple[str, ...] | None]]
    #: The levels whose stored policy must be the one enforced here, with that policy's hash.
    governed: dict[str, str] = {}
    if path is None:
        locks = [_lock_budget_query(budget_id, currency, now_us)]
        plans = [(budget_id, list(engine.usage_queries(policy, intent)), None)]
        governed[budget_id] = _policy_hash(policy)
    else:
        if path.budget_id != budget_id:
            raise InvalidArguments(f"budget_id {budget_id!r} is not the budget path's own ({path.budget_id!r})")
        parents = tuple(path.parents)
        # Root to leaf: the one lock order of every level.
        locks = [_lock_budget_query(level.budget_id, currency, now_us, parent=level.parent) for level in path.levels]
        plans = [(level.budget_id, list(engine.usage_queries(level.policy, intent)), tuple(level.covers))
                 for level in path.levels]
        # The root's stored policy governs every level (its `agents:` define them); the agents' stored
        # versions are derived views of it.
        governed.update((level.budget_id, _policy_hash(level.policy)) for level in path.levels
                        if level.parent is None)
    # A frozen level (or an enclosing one) refuses: every level's freeze is read.
    frozen_ids = list(dict.fromkeys(level_id for level_id, _queries, _covers in plans))
    usage_reads = [_usage_query(level_id, queries, intent.merchant_id, covers) for level_id, queries, covers in plans]
    new_id = dialect.name == "postgresql"  # PostgreSQL draws the id first, so the writes need not wait for it
    answers = yield from batch_steps(
        *locks, _latest_by_key_query(budget_id, idempotency_key), *(frozen_query(f) for f in frozen_ids),
        *(query for query, _idents in usage_reads), head_query(dialect, budget_id),
        *((Q("SELECT nextval('entries_id_seq')"),) if new_id else ()))
    held = {level_id: _check_currency(level_id, currency, rows)
            for (level_id, _queries, _covers), rows in zip(plans, answers, strict=False)}
    answers = answers[len(locks):]
    existing = entry_from_row(answers[0][0]) if answers[0] else None
    if existing is not None:
        _same_payment(existing, intent)
        if existing.status != "released":
            return Reservation(existing, replayed=True)
    for level_id, given in governed.items():
        _refuse_other_policy(level_id, held[level_id], given)
    # The owner's kill switch, under the budget row locks.
    for level_id, rows in zip(frozen_ids, answers[1:1 + len(frozen_ids)], strict=True):
        refuse_if_frozen(level_id, rows)
    reads = answers[1 + len(frozen_ids):]  # each level's usage, the audit head, (PostgreSQL) the entry id
    attempt = 1 if existing is None else existing.attempt + 1
    mcc = (intent.mcc or "").strip() or None  # the policy keys MCC caps by the stripped code
    usages = [_usage_from_rows(engine, currency, queries, idents, rows) for (_id, queries, _c), (_q, idents), rows
              in zip(plans, usage_reads, reads[:len(plans)], strict=True)]
    head = head_from_rows(reads[len(plans)])

    if path is None:
        usage = usages[0]
        verdict = engine.decide(policy, intent, usage)  # PolicyViolation rolls the transaction back
        seen: dict[str, Any] = {}
    else:
        verdict = path.decide(intent, usages)  # a refusal names its level and rolls everything back
        usage = usages[-1]
        seen = {"levels": {level.budget_id: {name: {"minor": f.amount.minor, "count": f.count}
                                             for name, f in u.figures.items()}
                           for level, u in zip(path.levels[:-1], usages[:-1], strict=True)}}

    counts = 1 if intent.action == "pay" else 0
    counted = intent.budget_amount.minor * counts
    decision = _decision(verdict)
    policy_hash = _policy_hash(policy)
    seq = head.seq
    fields: dict[str, Any] = {
        "budget_id": budget_id, "idempotency_key": idempotency_key, "attempt": attempt, "run_id": run_id,
        "action": intent.action, "merchant_id": intent.merchant_id, "merchant_name": intent.merchant_name,
        "mcc": mcc, "amount_minor": intent.amount.minor, "currency": intent.amount.currency,
        "budget_minor": intent.budget_amount.minor, "budget_currency": currency,
        "fx_rate": None if intent.fx_rate is None else str(intent.fx_rate), "checkout_id": intent.checkout_id,
        "status": "reserved", "counts": counts, "counted_minor": counted, "refunded_minor": 0,
        "refunded_budget_minor": 0, "decision": canonical_json(decision), "policy_hash": policy_hash,
        "created_at": now_us, "updated_at": now_us, "audit_seq": seq, "last_audit_seq": seq, "phase": "reserved",
        "owner": owner, "lease_until": None if lease_until is None else to_us(lease_until),
        "reserved_minor": intent.budget_amount.minor, "parents": json.dumps(list(parents)) if parents else None,
        "root_id": parents[0] if parents else None}
    if new_id:
        # PostgreSQL: the id was drawn with the reads, so the INSERT joins the pipelined writes and nothing
        # of them is awaited: the transaction's next wait is its COMMIT.
        fields["id"] = int(reads[-1][0][0])
        yield Q(_insert_sql(tuple(fields)), tuple(fields.values()), nowait=True, merge=True)
    else:
        # SQLite: the id comes from the insert itself (the writes run one by one in-process anyway).
        rows = yield Q(_insert_sql(tuple(fields)) + " RETURNING id", tuple(fields.values()))
        fields["id"] = int(rows[0][0])
    entry_id = int(fields["id"])
    if counts:
        yield from _bump(budget_id, intent.merchant_id, intent.merchant_name, mcc, now_us, counted, 1, 0, parents)
    yield from write_record_steps(head, "reserve", {
        "entry_id": entry_id, "idempotency_key": idempotency_key, "attempt": attempt, "run_id": run_id,
        "action": intent.action, "merchant_id": intent.merchant_id, "mcc": mcc, "amount": intent.amount,
        "budget_amount": intent.budget_amount, "fx_rate": intent.fx_rate, "checkout_id": intent.checkout_id,
        "policy_hash": policy_hash, "decision": "allow", "decision_detail": decision, "owner": owner,
        "usage": {name: {"minor": f.amount.minor, "count": f.count} for name, f in usage.figures.items()}, **seen,
    }, budget_id=budget_id, at=now, redacted=True)
    # The entry as written, read back from the values themselves (the same conversion as a row read from the
    # table; columns not written, such as external_ref, are NULL).
    entry = entry_from_row(tuple(map(fields.get, _ENTRY_NAMES)))
    return Reservation(entry, replayed=False, verdict=verdict)


_ENTRY_NAMES = tuple(ENTRY_COLUMNS.split(", "))


@functools.lru_cache(maxsize=8)
def _insert_sql(names: tuple[str, ...]) -> str:
    return f"INSERT INTO entries ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def _locked_entry(dialect: Dialect, entry_id: int) -> Steps[Entry]:
    """Lock budget then entry (the one lock order), returning the entry as locked."""
    if dialect.for_update:
        # The budget of the entry, locked by one statement; a missing entry is reported just below. An
        # entry of a sub-budget locks its root: every write to any level of a tree holds the root first.
        yield Q("SELECT currency FROM budgets WHERE budget_id = (SELECT COALESCE(root_id, budget_id) FROM entries "
                "WHERE id = ?) FOR UPDATE", (entry_id,))
    # SQLite: BEGIN IMMEDIATE already holds the only write lock, so one plain read is enough.
    return (yield from _entry(dialect, entry_id, lock=True))


# PostgreSQL: create-or-lock the audit head of an entry's budget, by the entry's id (as `audit.head_query`).
_HEAD_BY_ENTRY = ("INSERT INTO audit_heads (budget_id, n, seq, hash) SELECT budget_id, 0, 0, ? FROM entries "
                  "WHERE id = ? ON CONFLICT (budget_id) DO UPDATE SET n = audit_heads.n "
                  "RETURNING n, hash, nextval('audit_seq_gen')")


def _lock_for_change(dialect: Dialect, entry_id: int, *more: Q
                     ) -> Steps[tuple[Entry, ChainHead | None, list[list[Row]]]]:
    """`_locked_entry` for a change of the entry, with `more` reads after it. On PostgreSQL one batch
    (one round trip) locks the budget, the entry and then the audit head of the entry's budget (the
    lock order holds), and the head is returned; SQLite runs them one by one and leaves the head to
    `_change`."""
    if not dialect.for_update:
        entry = yield from _entry(dialect, entry_id, lock=True)
        extra: list[list[Row]] = []
        for query in more:
            extra.append((yield query))
        return entry, None, extra
    answers = yield from batch_steps(
        Q("SELECT currency FROM budgets WHERE budget_id = (SELECT COALESCE(root_id, budget_id) FROM entries "
          "WHERE id = ?) FOR UPDATE", (entry_id,)),
        Q(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ? FOR UPDATE", (entry_id,)),
        Q(_HEAD_BY_ENTRY, (GENESIS, entry_id)), *more)
    if not answers[1]:
        raise NotFound(f"ledger entry {entry_id} does not exist; use an id returned by reserve")
    return entry_from_row(answers[1][0]), head_from_rows(answers[2]), answers[3:]


def _change(dialect: Dialect, entry: Entry, assignments: str, params: tuple[Any, ...], kind: str,
            payload: Mapping[str, Any], now: datetime, head: ChainHead | None, changed: Mapping[str, Any]
            ) -> Steps[Entry]:
    """Apply `assignments` to the entry (as locked) together with its new ``last_audit_seq``, then append
    the record (after `head`, already locked by `_lock_for_change`, or locked here). `changed` names the
    entry's fields the assignments set, with their new values: the entry handed back is the locked one
    with them, so no write waits for an answer (on PostgreSQL the record, the aggregates and this UPDATE
    go as one statement with the COMMIT)."""
    if head is None:
        head = yield from lock_head_steps(dialect, entry.budget_id)
    yield from write_record_steps(head, kind, payload, budget_id=entry.budget_id, at=now, redacted=True)
    yield Q(f"UPDATE entries SET {assignments}, last_audit_seq = ? WHERE id = ?", (*params, head.seq, entry.id),
            nowait=True, merge=True)
    return dataclasses.replace(entry, **changed, updated_at=from_us(to_us(now)), last_audit_seq=head.seq)


#: The states a move may come from when the caller names none (direct use of the ledger; the payment
#: lifecycle always passes the transition table's, `amp_tools.payments.states.allowed_from`).
_HELD = ("awaiting_approval", "reserved", "sending", "unknown")
_POSTED = ("committed", "refunded")


def state_of_entry(entry: Entry) -> str:
    """The payment state of an entry, named as `amp_tools.payments.states.PaymentState` names it (the
    ledger sits below the payments package and cannot import it; a test keeps the two equal)."""
    if entry.status == "committed":
        return "refunded" if entry.refunded.minor > 0 else "committed"
    if entry.status == "released":
        return "released"
    return entry.phase or "reserved"


def _refused_steps(dialect: Dialect, entry: Entry, head: ChainHead | None, to: str, why: str,
                   now: datetime) -> Steps[InvalidTransition]:
    """Record a refused move in the entry's budget chain and hand back the refusal; the entry is left as it
    is. The ledger raises it once this transaction (with its record) has committed."""
    if head is None:
        head = yield from lock_head_steps(dialect, entry.budget_id)
    current = state_of_entry(entry)
    yield from write_record_steps(head, MOVE_REFUSED, {
        "entry_id": entry.id, "idempotency_key": entry.idempotency_key, "from": current, "to": to,
        "reason": why}, budget_id=entry.budget_id, at=now, redacted=True)
    return InvalidTransition(entry.id, current, to, why)


def commit_steps(dialect: Dialect, entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None,
                 now: datetime, debited: Money | None = None,
                 allowed_from: tuple[str, ...] | None = None) -> Steps[Entry | InvalidTransition]:
    """Post a reservation. `debited` (budget currency) is what the network reports it took: it replaces
    the held amount in every figure, so the budget counts what was debited, above the hold or below it.
    `allowed_from`: the states it may be posted from (the lifecycle passes the table's; default: any held)."""
    # The merchant transaction id may be recorded once (by one pay entry): read with the locks.
    dup = (Q("SELECT id FROM entries WHERE merchant_id = (SELECT merchant_id FROM entries WHERE id = ?) "
             "AND external_ref = ? AND status = 'committed' AND action = 'pay' AND dup_of IS NULL AND id <> ?",
             (entry_id, external_ref, entry_id)),) if external_ref is not None else ()
    entry, head, extra = yield from _lock_for_change(dialect, entry_id, *dup)
    if committed_already(entry, external_ref):
        return entry
    why = commit_refusal(entry, allowed_from)
    if why is not None:
        return (yield from _refused_steps(dialect, entry, head, "committed", why, now))
    commit_checks(entry, external_ref, int(extra[0][0][0]) if dup and extra[0] else None, debited)
    clean = redact(dict(outcome or {}))
    payload: dict[str, Any] = {"entry_id": entry_id, "idempotency_key": entry.idempotency_key,
                               "external_ref": external_ref, "outcome": clean, "amount": entry.amount,
                               "budget_amount": entry.budget_amount}
    assignments = "status = 'committed', phase = NULL, owner = NULL, lease_until = NULL, resume = NULL"
    params: tuple[Any, ...] = ()
    delta = 0
    if debited is not None and entry.action == "pay":
        delta = debited.minor - entry.budget_amount.minor
        payload.update(budget_amount=debited, reserved=entry.budget_amount, debited=debited)
        if delta > 0:
            payload["over_reservation"] = Money(delta, debited.currency)
        assignments += ", budget_minor = ?, counted_minor = counted_minor + ?"
        params = (debited.minor, delta)
    if entry.action == "pay":
        yield from _bump(entry.budget_id, entry.merchant_id, entry.merchant_name, entry.mcc,
                         to_us(entry.created_at), delta, 0, 1, entry.parents)
    stored = canonical_json(clean)
    changed: dict[str, Any] = {"status": "committed", "phase": None, "owner": None, "lease_until": None,
                               "resume": None, "external_ref": external_ref, "outcome": json.loads(stored)}
    if params:
        changed["budget_amount"] = debited
    return (yield from _change(
        dialect, entry, assignments + ", external_ref = ?, outcome = ?, updated_at = ?",
        (*params, external_ref, stored, to_us(now)), "commit", payload, now, head, changed))


def committed_already(entry: Entry, external_ref: str | None) -> bool:
    """Whether a commit finds the entry committed already (handed back as it is); a different merchant
    transaction id for it is an error."""
    if entry.status != "committed":
        return False
    if external_ref is not None and entry.external_ref is not None and external_ref != entry.external_ref:
        raise InvalidArguments(f"entry {entry.id} is already committed with external_ref "
                               f"{entry.external_ref!r}, not {external_ref!r}")
    return True


def commit_refusal(entry: Entry, allowed_from: tuple[str, ...] | None) -> str | None:
    """Why the transition table refuses to post this entry ('' when it says no more), None when it allows
    it (`allowed_from`: the lifecycle passes the table's; default: any held state)."""
    if state_of_entry(entry) in (allowed_from if allowed_from is not None else _HELD):
        return None
    if entry.status == "released":
        return f"it was released ({entry.reason}); reserve again with the same idempotency key for a new attempt"
    return ""


def commit_checks(entry: Entry, external_ref: str | None, taken: int | None, debited: Money | None) -> None:
    """The rules of a commit the table allows, on the entry as locked (`taken`: another entry holding the
    merchant transaction id): raises when it may not be made."""
    if entry.action == "pay" and external_ref is not None and taken is not None:
        raise AlreadyCommitted(taken, external_ref)
    if debited is not None and entry.action == "pay" and (
            debited.currency != entry.budget_amount.currency or not debited.is_positive()):
        raise InvalidArguments(f"debited amount {debited} must be positive and in the budget currency "
                               f"{entry.budget_amount.currency}")


def release_steps(dialect: Dialect, entry_id: int, *, reason: str, now: datetime,
                  allowed_from: tuple[str, ...] | None = None) -> Steps[Entry | InvalidTransition]:
    """Give a held payment's money back. `allowed_from`: the states it may be released from (the
    lifecycle passes the table's; default: any held); a repeated release returns the entry as it is."""
    entry, head, _ = yield from _lock_for_change(dialect, entry_id)
    if entry.status == "released":
        return entry
    if state_of_entry(entry) not in (allowed_from if allowed_from is not None else _HELD):
        why = (f"it was paid (ref {entry.external_ref!r}); a committed payment is not released, refund it instead"
               if entry.status == "committed" else "")
        return (yield from _refused_steps(dialect, entry, head, "released", why, now))
    counted = entry.counted.minor
    if entry.action == "pay":
        yield from _bump(entry.budget_id, entry.merchant_id, entry.merchant_name, entry.mcc,
                         to_us(entry.created_at), -counted, -1, 0, entry.parents)
    return (yield from _change(
        dialect, entry, "status = 'released', counts = 0, counted_minor = 0, phase = NULL, owner = NULL, "
        "lease_until = NULL, resume = NULL, reason = ?, updated_at = ?",
        (reason, to_us(now)), "release", {
            "entry_id": entry_id, "idempotency_key": entry.idempotency_key, "reason": reason,
            "credited": Money(counted, entry.budget_amount.currency),
        }, now, head, {"status": "released", "phase": None, "owner": None, "lease_until": None, "resume": None,
                       "reason": reason}))


def transition_steps(dialect: Dialect, entry_id: int, *, allowed_from: tuple[str, ...], to_phase: str,
                     owner: str | None, lease_until: datetime | None, resume: str | None, keep_resume: bool,
                     reason: str, now: datetime) -> Steps[Entry | InvalidTransition]:
    """Move a reserved entry from one of `allowed_from` to `to_phase` (the lifecycle module decides
    which moves exist; this only applies one atomically and audits it, or records its refusal).
    PostgreSQL makes the move in one call to the server (`_commit_fn`)."""
    if dialect.name == "postgresql":
        from . import _commit_fn  # imported here: it builds on this module

        return (yield from _commit_fn.transition_steps(
            entry_id, allowed_from=allowed_from, to_phase=to_phase, owner=owner, lease_until=lease_until,
            resume=resume, keep_resume=keep_resume, reason=reason, now=now))
    return (yield from _transition_steps(dialect, entry_id, allowed_from=allowed_from, to_phase=to_phase, owner=owner,
                                         lease_until=lease_until, resume=resume, keep_resume=keep_resume,
                                         reason=reason, now=now))


def transition_refused(entry: Entry, allowed_from: tuple[str, ...]) -> bool:
    """The rule of a lifecycle move, on the entry as locked: only a reserved entry in an allowed state moves."""
    return entry.status != "reserved" or state_of_entry(entry) not in allowed_from


def _transition_steps(dialect: Dialect, entry_id: int, *, allowed_from: tuple[str, ...], to_phase: str,
                      owner: str | None, lease_until: datetime | None, resume: str | None, keep_resume: bool,
                      reason: str, now: datetime) -> Steps[Entry | InvalidTransition]:
    entry, head, _ = yield from _lock_for_change(dialect, entry_id)
    if transition_refused(entry, allowed_from):
        return (yield from _refused_steps(dialect, entry, head, to_phase, "", now))
    assignments = "phase = ?, owner = ?, lease_until = ?, updated_at = ?"
    lease_us = None if lease_until is None else to_us(lease_until)
    params: tuple[Any, ...] = (to_phase, owner, lease_us, to_us(now))
    changed: dict[str, Any] = {"phase": to_phase, "owner": owner,
                               "lease_until": None if lease_us is None else from_us(lease_us)}
    if not keep_resume:
        assignments += ", resume = ?"
        params += (resume,)
        changed["resume"] = resume
    return (yield from _change(dialect, entry, assignments, params, "transition", {
        "entry_id": entry_id, "idempotency_key": entry.idempotency_key, "from": entry.phase or "reserved",
        "to": to_phase, "owner": owner, "reason": reason}, now, head, changed))


def heartbeat_steps(entry_ids: tuple[int, ...], owner: str, lease_until: datetime) -> Steps[int]:
    """Extend the lease of the owner's live entries; returns how many it still holds."""
    if not entry_ids:
        return 0
    marks = ", ".join("?" * len(entry_ids))
    rows = yield Q(f"UPDATE entries SET lease_until = ? WHERE owner = ? AND status = 'reserved' AND id IN ({marks}) "
                   "RETURNING id", (to_us(lease_until), owner, *entry_ids))
    return len(rows)


def reserved_steps(limit: int) -> Steps[list[Entry]]:
    """Every entry still holding money (oldest first): the candidates of recovery."""
    rows = yield Q(f"SELECT {ENTRY_COLUMNS} FROM entries WHERE status = 'reserved' ORDER BY created_at LIMIT ?",
                   (limit,))
    return [entry_from_row(r) for r in rows]


def refund_steps(dialect: Dialect, entry_id: int, amount: Money, *, external_ref: str, now: datetime,
                 allowed_from: tuple[str, ...] | None = None, reason: str = "") -> Steps[Entry | InvalidTransition]:
    """Credit a refund of a paid entry, idempotent per `external_ref`. `allowed_from`: the states it may be
    refunded from (the lifecycle passes the table's; default: committed, or refunded in part)."""
    _text("external_ref", external_ref)
    entry = yield from _locked_entry(dialect, entry_id)
    if amount.currency != entry.amount.currency:
        raise CurrencyMismatch(f"refund {amount} is not in the entry's currency {entry.amount.currency}")
    if not amount.is_positive():
        raise InvalidArguments(f"refund amount {amount} must be positive")
    if entry.action != "pay":
        raise InvalidArguments(f"entry {entry_id} is a {entry.action} entry; only payments can be refunded")
    state = state_of_entry(entry)
    if state not in (allowed_from if allowed_from is not None else _POSTED):
        why = "only committed payments can be refunded" if entry.status != "committed" else ""
        return (yield from _refused_steps(dialect, entry, None, "refunded", why, now))
    done = yield Q("SELECT amount_minor FROM refunds WHERE entry_id = ? AND external_ref = ?", (entry_id, external_ref))
    if done:
        if int(done[0][0]) != amount.minor:
            raise InvalidArguments(f"refund {external_ref!r} of entry {entry_id} was already recorded for "
                                   f"{Money(int(done[0][0]), amount.currency)}, not {amount}")
        return entry
    refundable = entry.refundable
    if amount > refundable:
        raise InvalidArguments(f"refund {amount} exceeds what entry {entry_id} can still refund ({refundable}: "
                               f"committed {entry.amount}, already refunded {entry.refunded})")
    new_refunded = entry.refunded.minor + amount.minor
    total_minor, budget_minor = entry.amount.minor, entry.budget_amount.minor
    new_budget = budget_minor if new_refunded == total_minor else budget_minor * new_refunded // total_minor
    credit = new_budget - entry.refunded_budget.minor
    now_us = to_us(now)
    yield from _bump(entry.budget_id, entry.merchant_id, entry.merchant_name, entry.mcc,
                     to_us(entry.created_at), -credit, 0, 0, entry.parents)
    head = yield from lock_head_steps(dialect, entry.budget_id)
    seq = head.seq
    rows = yield Q("INSERT INTO refunds (entry_id, budget_id, amount_minor, currency, budget_minor, budget_currency, "
                   "external_ref, created_at, audit_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                   (entry_id, entry.budget_id, amount.minor, amount.currency, credit, entry.budget_amount.currency,
                    external_ref, now_us, seq))
    refund_id = int(rows[0][0])
    updated = yield Q("UPDATE entries SET refunded_minor = ?, refunded_budget_minor = ?, "
                      "counted_minor = counted_minor - ?, updated_at = ?, last_audit_seq = ? WHERE id = ? "
                      f"RETURNING {ENTRY_COLUMNS}", (new_refunded, new_budget, credit, now_us, seq, entry_id))
    yield from write_record_steps(head, "refund", {
        "entry_id": entry_id, "refund_id": refund_id, "external_ref": external_ref, "amount": amount,
        "credited": Money(credit, entry.budget_amount.currency),
        "refunded_total": Money(new_refunded, amount.currency), "from": state, "to": "refunded",
        "reason": reason}, budget_id=entry.budget_id, at=now, redacted=True)
    return entry_from_row(updated[0])


def totals_steps(budget_id: str) -> Steps[dict[str, Any]]:
    """All-time aggregates of a budget (O(1) + the number of merchants/MCCs it has seen)."""
    head = yield Q("SELECT currency, used_minor, used_count, committed_count FROM budgets WHERE budget_id = ?",
                   (budget_id,))
    rows = yield Q("SELECT scope, key, label, used_minor, used_count, committed_count FROM usage_totals "
                   "WHERE budget_id = ? ORDER BY scope, key", (budget_id,))
    return {"budget": head[0] if head else None, "scopes": rows}


def tree_steps(root_id: str) -> Steps[list[tuple[str, str | None, str, int, int]]]:
    """(budget_id, parent, currency, used_minor, used_count) of `root_id` and its sub-budgets, parents first
    (sub-budget ids extend their parent's with ``/name``)."""
    pattern = root_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    rows = yield Q("SELECT budget_id, parent, currency, used_minor, used_count FROM budgets WHERE budget_id = ? "
                   "OR budget_id LIKE ? ESCAPE '\\'", (root_id, pattern))
    # LIKE ignores case in SQLite: keep exactly the ids under this root, parents before children.
    found = [(str(r[0]), None if r[1] is None else str(r[1]), str(r[2]), int(r[3]), int(r[4])) for r in rows
             if str(r[0]) == root_id or str(r[0]).startswith(root_id + "/")]
    return sorted(found, key=lambda row: row[0].split("/"))


def settlement_steps(budget_id: str, covers: tuple[str, ...] | None = None
                     ) -> Steps[tuple[tuple[int, int], tuple[int, int]]]:
    """(count, minor) of held payments, and of committed ones debited above what was reserved
    (of the budget and, with `covers`, of every budget listed there: its sub-budgets)."""
    ids = covers or (budget_id,)
    who = "budget_id = ?" if len(ids) == 1 else f"budget_id IN ({', '.join('?' * len(ids))})"
    held = yield Q(f"SELECT COUNT(*), COALESCE(SUM(counted_minor), 0) FROM entries WHERE {who} "
                   "AND status = 'reserved'", ids)
    over = yield Q("SELECT COUNT(*), COALESCE(SUM(budget_minor - reserved_minor), 0) FROM entries "
                   f"WHERE {who} AND status = 'committed' AND budget_minor > reserved_minor", ids)
    return (int(held[0][0]), int(held[0][1])), (int(over[0][0]), int(over[0][1]))


def load_session_steps(session_id: str) -> Steps[tuple[str, str, int] | None]:
    rows = yield Q("SELECT budget_id, data, version FROM sessions WHERE session_id = ?", (session_id,))
    return (str(rows[0][0]), str(rows[0][1]), int(rows[0][2])) if rows else None


def save_session_steps(session_id: str, budget_id: str, data: str, now: datetime) -> Steps[int]:
    _text("session_id", session_id)
    rows = yield Q("INSERT INTO sessions (session_id, budget_id, data, version, updated_at) VALUES (?, ?, ?, 1, ?) "
                   "ON CONFLICT (session_id) DO UPDATE SET data = excluded.data, budget_id = excluded.budget_id, "
                   "version = sessions.version + 1, updated_at = excluded.updated_at RETURNING version",
                   (session_id, budget_id, data, to_us(now)))
    return int(rows[0][0])


def json_or_none(value: str | None) -> Any:
    return None if value is None else json.loads(value)


StepFn = Callable[..., Steps[Any]]
