"""The `Ledger` protocol and the engine-independent half of every ledger.

`LedgerBase` turns the public API (async, plus `*_sync` twins) into step generators from `_ops`
and hands them to four primitives a backend implements: run steps in one write transaction or
one read transaction, async or sync. Backends own connections and transactions; nothing about
money lives in them.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from amp_tools.clock import SYSTEM_CLOCK, Clock, utc
from amp_tools.errors import InvalidArguments
from amp_tools.intent import SpendIntent
from amp_tools.money import Money

from . import _commit_fn, _ops, _reserve_fn
from . import budgets as _budgets
from ._engine import PathLike, PolicyEngine, PolicyLike, default_engine
from ._sql import Dialect, Steps, StepsFactory
from .audit import AuditLog
from .budgets import PolicyVersion, StoredBudget
from .records import Entry, InvalidTransition, Refund, Reservation

__all__ = ["Ledger", "LedgerBase"]

T = TypeVar("T")


@runtime_checkable
class Ledger(Protocol):
    """The durable spend ledger (see docs/CONTRACTS.md)."""

    audit: AuditLog

    async def reserve(self, intent: SpendIntent, policy: Any, *, budget_id: str, idempotency_key: str, run_id: str = "",
                      now: datetime | None = None, owner: str | None = None,
                      lease_until: datetime | None = None, path: PathLike | None = None) -> Reservation: ...
    async def commit(self, entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None = None,
                     debited: Money | None = None, allowed_from: tuple[str, ...] | None = None) -> Entry: ...
    async def release(self, entry_id: int, *, reason: str, allowed_from: tuple[str, ...] | None = None) -> Entry: ...
    async def refund(self, entry_id: int, amount: Money, *, external_ref: str,
                     allowed_from: tuple[str, ...] | None = None, reason: str = "") -> Entry: ...
    async def get(self, entry_id: int) -> Entry: ...
    async def get_by_key(self, budget_id: str, key: str) -> Entry | None: ...
    async def entries(self, budget_id: str | None = None, limit: int = 100) -> list[Entry]: ...
    async def usage_report(self, policy: Any, budget_id: str, now: datetime | None = None, *,
                           covers: tuple[str, ...] | None = None) -> dict[str, Any]: ...
    async def close(self) -> None: ...


def _probe(at: datetime, currency: str) -> SpendIntent:
    """A zero-value intent used only to ask the policy which windows it keeps."""
    zero = Money.zero(currency)
    return SpendIntent(action="pay", merchant_id="", merchant_name="", mcc=None, amount=zero, budget_amount=zero,
                       fx_rate=None, items=(), human_present=True, checkout_id="", at=at)


#: The steps of one move of an entry: the entry after it, or the refusal the ledger recorded instead.
_Move = StepsFactory[Entry | InvalidTransition]


def _applied(result: Entry | InvalidTransition) -> Entry:
    """The entry a move wrote; a refused move, whose refusal is in the audit trail by now, is raised."""
    if isinstance(result, InvalidTransition):
        raise result
    return result


class LedgerBase(abc.ABC):
    """Shared public API; subclasses implement the four `_run_*` primitives and `close`."""

    dialect: Dialect

    def __init__(self, *, clock: Clock | None = None, engine: PolicyEngine | None = None) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._engine = engine
        self.audit = AuditLog(self.dialect, self._run_write, self._run_read, self._run_read_sync,
                              self._run_write_sync, self.clock.now)

    @property
    def engine(self) -> PolicyEngine:
        if self._engine is None:
            self._engine = default_engine()
        return self._engine

    # -------------------------------------------------------------- backend primitives
    @abc.abstractmethod
    async def _run_write(self, factory: StepsFactory[T], flush: bool = True) -> T:
        """Run `factory` in one write transaction. `flush=False`: the commit need not wait for the disk
        flush (it is still ordered before every later flushed commit; see `amp_tools.payments.states`)."""

    @abc.abstractmethod
    async def _run_read(self, factory: StepsFactory[T]) -> T: ...

    @abc.abstractmethod
    def _run_write_sync(self, factory: StepsFactory[T], flush: bool = True) -> T: ...

    @abc.abstractmethod
    def _run_read_sync(self, factory: StepsFactory[T]) -> T: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def close_sync(self) -> None: ...

    async def run_write(self, factory: Callable[[], Steps[T]]) -> T:
        """Run caller-built steps (e.g. an approvals row + `audit.append_steps`) in one write transaction."""
        return await self._run_write(factory)

    async def run_read(self, factory: Callable[[], Steps[T]]) -> T:
        """Run caller-built read steps in one read transaction (approvals, the owner's dashboard)."""
        return await self._run_read(factory)

    def run_write_sync(self, factory: Callable[[], Steps[T]]) -> T:
        return self._run_write_sync(factory)

    def run_read_sync(self, factory: Callable[[], Steps[T]]) -> T:
        return self._run_read_sync(factory)

    def _now(self, now: datetime | None) -> datetime:
        return utc(now) if now is not None else self.clock.now()

    # -------------------------------------------------------------- step factories
    def _reserve(self, intent: SpendIntent, policy: PolicyLike, budget_id: str, idempotency_key: str, run_id: str,
                 now: datetime | None, owner: str | None = None, lease_until: datetime | None = None,
                 path: PathLike | None = None) -> StepsFactory[Reservation]:
        at, engine = self._now(now), self.engine
        if self.dialect.name == "postgresql":  # the whole check-and-reserve in one call to the server
            return lambda: _reserve_fn.reserve_steps(engine, policy, intent, budget_id=budget_id,
                                                     idempotency_key=idempotency_key, run_id=run_id, now=at,
                                                     owner=owner, lease_until=lease_until, path=path)
        return lambda: _ops.reserve_steps(self.dialect, engine, policy, intent, budget_id=budget_id,
                                          idempotency_key=idempotency_key, run_id=run_id, now=at, owner=owner,
                                          lease_until=lease_until, path=path)

    def _commit(self, entry_id: int, external_ref: str | None, outcome: Mapping[str, Any] | None,
                debited: Money | None = None, allowed_from: tuple[str, ...] | None = None) -> _Move:
        at = self.clock.now()
        if self.dialect.name == "postgresql":  # one call to the server, its own transaction
            return lambda: _commit_fn.commit_steps(entry_id, external_ref=external_ref, outcome=outcome, now=at,
                                                   debited=debited, allowed_from=allowed_from)
        return lambda: _ops.commit_steps(self.dialect, entry_id, external_ref=external_ref, outcome=outcome, now=at,
                                         debited=debited, allowed_from=allowed_from)

    def _release(self, entry_id: int, reason: str, allowed_from: tuple[str, ...] | None = None) -> _Move:
        at = self.clock.now()
        return lambda: _ops.release_steps(self.dialect, entry_id, reason=reason, now=at, allowed_from=allowed_from)

    def _refund(self, entry_id: int, amount: Money, external_ref: str, allowed_from: tuple[str, ...] | None = None,
                reason: str = "") -> _Move:
        if not isinstance(amount, Money):
            raise InvalidArguments(f"refund amount {amount!r} must be Money")
        at = self.clock.now()
        return lambda: _ops.refund_steps(self.dialect, entry_id, amount, external_ref=external_ref, now=at,
                                         allowed_from=allowed_from, reason=reason)

    # -------------------------------------------------------------- async API
    async def reserve(self, intent: SpendIntent, policy: Any, *, budget_id: str, idempotency_key: str, run_id: str = "",
                      now: datetime | None = None, owner: str | None = None,
                      lease_until: datetime | None = None, path: PathLike | None = None,
                      flush: bool = True) -> Reservation:
        """Atomically check the policy against current usage and reserve; see `_ops.reserve_steps`
        (`path`: every level of a budget with sub-budgets, checked in the same transaction). `flush=False`
        (the payment lifecycle's choice for a reservation) commits without waiting for the disk flush."""
        return await self._run_write(self._reserve(intent, policy, budget_id, idempotency_key, run_id, now,
                                                   owner, lease_until, path), flush)

    async def commit(self, entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None = None,
                     debited: Money | None = None, allowed_from: tuple[str, ...] | None = None) -> Entry:
        """Post a reservation. Payments are posted through `amp_tools.payments`, which passes the
        states a commit may come from; `debited` (budget currency) replaces the held amount."""
        return _applied(await self._run_write(self._commit(entry_id, external_ref, outcome, debited, allowed_from)))

    async def transition(self, entry_id: int, *, allowed_from: tuple[str, ...], to_phase: str, owner: str | None,
                         lease_until: datetime | None, reason: str = "", resume: str | None = None,
                         keep_resume: bool = True, flush: bool = True) -> Entry:
        """Apply one lifecycle move to a reserved entry (`amp_tools.payments` decides which moves exist,
        and which of them may commit without waiting for the disk flush)."""
        at = self.clock.now()
        return _applied(await self._run_write(lambda: _ops.transition_steps(
            self.dialect, entry_id, allowed_from=allowed_from, to_phase=to_phase, owner=owner,
            lease_until=lease_until, resume=resume, keep_resume=keep_resume, reason=reason, now=at), flush))

    async def heartbeat(self, entry_ids: tuple[int, ...], *, owner: str, lease_until: datetime) -> int:
        return await self._run_write(lambda: _ops.heartbeat_steps(entry_ids, owner, lease_until))

    async def reserved_entries(self, *, limit: int = 1000) -> list[Entry]:
        """Every entry still holding money, oldest first."""
        return await self._run_read(lambda: _ops.reserved_steps(limit))

    async def load_session(self, session_id: str) -> tuple[str, str, int] | None:
        """(budget_id, data, version) of a durable agent session, or None."""
        return await self._run_read(lambda: _ops.load_session_steps(session_id))

    async def save_session(self, session_id: str, *, budget_id: str, data: str) -> int:
        at = self.clock.now()
        return await self._run_write(lambda: _ops.save_session_steps(session_id, budget_id, data, at))

    async def release(self, entry_id: int, *, reason: str, allowed_from: tuple[str, ...] | None = None) -> Entry:
        """Give a held payment's money back (payments are released through `amp_tools.payments`, which
        passes the states a release may come from)."""
        return _applied(await self._run_write(self._release(entry_id, reason, allowed_from)))

    async def refund(self, entry_id: int, amount: Money, *, external_ref: str,
                     allowed_from: tuple[str, ...] | None = None, reason: str = "") -> Entry:
        """Credit a refund of a paid entry (payments are refunded through `amp_tools.payments`, which
        passes the states a refund may come from)."""
        return _applied(await self._run_write(self._refund(entry_id, amount, external_ref, allowed_from, reason)))

    async def get(self, entry_id: int) -> Entry:
        return await self._run_read(lambda: _ops.get_steps(self.dialect, entry_id))

    async def get_by_key(self, budget_id: str, key: str) -> Entry | None:
        return await self._run_read(lambda: _ops.get_by_key_steps(budget_id, key))

    async def refunds(self, entry_id: int) -> list[Refund]:
        return await self._run_read(lambda: _ops.refunds_steps(entry_id))

    async def entries(self, budget_id: str | None = None, limit: int = 100) -> list[Entry]:
        return await self._run_read(lambda: _ops.entries_steps(budget_id, limit))

    async def usage_report(self, policy: Any, budget_id: str, now: datetime | None = None, *,
                           covers: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Used / left overall and per window, per-merchant and per-MCC totals (feeds `budget_status`);
        `covers`: the budget and its sub-budgets' ids when it has any (their spending counts here)."""
        at, engine = self._now(now), self.engine
        return await self._run_read(lambda: _report_steps(engine, policy, budget_id, at, covers))

    async def budget_tree(self, root_id: str) -> list[tuple[str, str | None, str, int, int]]:
        """(budget_id, parent, currency, used_minor, used_count) of a budget and every sub-budget below it."""
        return await self._run_read(lambda: _ops.tree_steps(root_id))

    # -------------------------------------------------------------- stored budgets (see `budgets`)
    async def get_budget(self, budget_id: str) -> StoredBudget | None:
        """The stored budget (policy in force, version, parent, freeze), or None if it has no stored policy."""
        return await self._run_read(lambda: _budgets.get_steps(budget_id))

    async def list_budgets(self) -> list[StoredBudget]:
        """Every stored budget, by id."""
        return await self._run_read(_budgets.list_steps)

    async def create_budget(self, budget_id: str, policy: Any, *, by: str, parent: str | None = None,
                            note: str = "") -> StoredBudget:
        """Store a budget at policy version 1 (`BudgetExists` if it is stored already); a budget that has
        entries but no stored policy is adopted (the audit record says so)."""
        at = self.clock.now()
        return await self._run_write(lambda: _budgets.create_steps(self.dialect, budget_id, policy, by=by,
                                                                   parent=parent, note=note, now=at))

    async def set_policy(self, budget_id: str, policy: Any, *, by: str, expected_version: int,
                         note: str = "") -> StoredBudget:
        """Store a new policy version if the stored one is still `expected_version` (else `StaleVersion`)."""
        at = self.clock.now()
        return await self._run_write(lambda: _budgets.set_policy_steps(
            self.dialect, budget_id, policy, by=by, expected_version=expected_version, note=note, now=at))

    async def policy_history(self, budget_id: str) -> list[PolicyVersion]:
        """Every stored version of the budget's policy, oldest first."""
        return await self._run_read(lambda: _budgets.history_steps(budget_id))

    def get_budget_sync(self, budget_id: str) -> StoredBudget | None:
        return self._run_read_sync(lambda: _budgets.get_steps(budget_id))

    def list_budgets_sync(self) -> list[StoredBudget]:
        return self._run_read_sync(_budgets.list_steps)

    def create_budget_sync(self, budget_id: str, policy: Any, *, by: str, parent: str | None = None,
                           note: str = "") -> StoredBudget:
        at = self.clock.now()
        return self._run_write_sync(lambda: _budgets.create_steps(self.dialect, budget_id, policy, by=by,
                                                                  parent=parent, note=note, now=at))

    def set_policy_sync(self, budget_id: str, policy: Any, *, by: str, expected_version: int,
                        note: str = "") -> StoredBudget:
        at = self.clock.now()
        return self._run_write_sync(lambda: _budgets.set_policy_steps(
            self.dialect, budget_id, policy, by=by, expected_version=expected_version, note=note, now=at))

    def policy_history_sync(self, budget_id: str) -> list[PolicyVersion]:
        return self._run_read_sync(lambda: _budgets.history_steps(budget_id))

    # -------------------------------------------------------------- sync twins
    def reserve_sync(self, intent: SpendIntent, policy: Any, *, budget_id: str, idempotency_key: str, run_id: str = "",
                     now: datetime | None = None, path: PathLike | None = None, flush: bool = True) -> Reservation:
        return self._run_write_sync(self._reserve(intent, policy, budget_id, idempotency_key, run_id, now,
                                                  path=path), flush)

    def commit_sync(self, entry_id: int, *, external_ref: str | None, outcome: Mapping[str, Any] | None = None,
                    debited: Money | None = None) -> Entry:
        return _applied(self._run_write_sync(self._commit(entry_id, external_ref, outcome, debited)))

    def release_sync(self, entry_id: int, *, reason: str) -> Entry:
        return _applied(self._run_write_sync(self._release(entry_id, reason)))

    def refund_sync(self, entry_id: int, amount: Money, *, external_ref: str) -> Entry:
        return _applied(self._run_write_sync(self._refund(entry_id, amount, external_ref)))

    def get_sync(self, entry_id: int) -> Entry:
        return self._run_read_sync(lambda: _ops.get_steps(self.dialect, entry_id))

    def get_by_key_sync(self, budget_id: str, key: str) -> Entry | None:
        return self._run_read_sync(lambda: _ops.get_by_key_steps(budget_id, key))

    def entries_sync(self, budget_id: str | None = None, limit: int = 100) -> list[Entry]:
        return self._run_read_sync(lambda: _ops.entries_steps(budget_id, limit))

    def usage_report_sync(self, policy: Any, budget_id: str, now: datetime | None = None, *,
                          covers: tuple[str, ...] | None = None) -> dict[str, Any]:
        at, engine = self._now(now), self.engine
        return self._run_read_sync(lambda: _report_steps(engine, policy, budget_id, at, covers))

    def budget_tree_sync(self, root_id: str) -> list[tuple[str, str | None, str, int, int]]:
        return self._run_read_sync(lambda: _ops.tree_steps(root_id))


def _report_steps(engine: PolicyEngine, policy: Any, budget_id: str, now: datetime,
                  covers: tuple[str, ...] | None = None) -> Steps[dict[str, Any]]:
    """The `budget_status` figures. Limits are read from the policy when it has them (duck-typed:
    `total_budget`, `windows.<period>.limit`, `merchants.caps`, `mccs.caps`, `velocity`)."""
    currency = str(policy.currency)
    totals = yield from _ops.totals_steps(budget_id)
    head = totals["budget"]
    used_minor, used_count, committed_count = (int(head[1]), int(head[2]), int(head[3])) if head else (0, 0, 0)

    def figure(used: int, limit: Money | None, count: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"used": Money(used, currency).to_public()}
        if count is not None:
            out["count"] = count
        if limit is not None:
            out["limit"] = limit.to_public()
            out["left"] = Money(max(0, limit.minor - used), currency).to_public()
        return out

    held, over = yield from _ops.settlement_steps(budget_id, covers)
    report: dict[str, Any] = {
        "budget_id": budget_id, "currency": currency, "as_of": now.isoformat(),
        "policy": getattr(policy, "name", None), "policy_hash": policy.snapshot_hash(),
        "total": {**figure(used_minor, getattr(policy, "total_budget", None), used_count),
                  "committed_count": committed_count},
        "windows": {}, "velocity": None, "merchants": {}, "mccs": {},
    }
    if held[0]:
        # Payments not yet settled (in flight, or waiting for their outcome): counted in `used`.
        report["total"]["held"] = {"count": held[0], "amount": Money(held[1], currency).to_public()}
    if over[0]:
        # The network debited more than was reserved (an FX move): committed as debited, and shown.
        report["total"]["debited_above_reservations"] = {"count": over[0],
                                                         "amount": Money(over[1], currency).to_public()}
    windows = getattr(policy, "windows", None)
    for query in engine.usage_queries(policy, _probe(now, currency)):
        if query.scope != "all" or query.since is None:
            continue  # the probe names no merchant; per-merchant usage is listed below
        minor, count = yield from _ops.figure_steps(budget_id, "all", None, query.since, covers)
        if query.name.startswith("windows."):
            cap = getattr(windows, query.name.removeprefix("windows."), None)
            report["windows"][query.name.removeprefix("windows.")] = {
                **figure(minor, getattr(cap, "limit", None), count), "since": query.since.isoformat(),
                "mode": getattr(cap, "mode", None)}
        elif query.name == "velocity":
            velocity = getattr(policy, "velocity", None)
            most = getattr(velocity, "max_payments", None)
            report["velocity"] = {"count": count, "limit": most, "per": getattr(velocity, "per", None),
                                  "left": None if most is None else max(0, int(most) - count),
                                  "since": query.since.isoformat()}
        else:
            report["windows"][query.name] = {**figure(minor, None, count), "since": query.since.isoformat()}
    merchant_caps = getattr(getattr(policy, "merchants", None), "caps", {}) or {}
    mcc_caps = getattr(getattr(policy, "mccs", None), "caps", {}) or {}
    for scope, key, label, minor, count, _committed in totals["scopes"]:
        if scope == "merchant":
            limit = _merchant_cap(merchant_caps, str(key), str(label or ""))
            report["merchants"][str(key)] = {"name": label, **figure(int(minor), limit, int(count))}
        else:
            report["mccs"][str(key)] = figure(int(minor), mcc_caps.get(str(key)), int(count))
    return report


def _merchant_cap(caps: Mapping[str, Money], merchant_id: str, name: str) -> Money | None:
    """The tightest cap whose key names this merchant by id or name (as the policy matches them)."""
    keys = {merchant_id.strip().casefold(), name.strip().casefold()} - {""}
    found = [cap for key, cap in caps.items() if key.strip().casefold() in keys]
    return min(found, key=lambda m: m.minor) if found else None
