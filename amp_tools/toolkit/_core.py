"""`ToolkitCore`: one agent session's AMP client, Guard, agent key, state and shared helpers.

The tool functions (shopping, paying, reporting, settling) work on this; `AmpToolkit` (in
`_toolkit.py`) adds the tool specs and start-up reconcile on top, so no module imports back up.
The person's side (approvals, wallet confirmation) is wired in by the program through
`approver` and `wallet_prompt`, never through a tool.

The budget it spends from is named on purpose (`budget_id`, else the policy's `name`): two
toolkits on one ledger share a budget only when they name the same one, and they enforce the
budget's policy as stored in the ledger (`toolkit.budget.use_budget`), not a file of their own. With a `session_id` the
session's state is durable in the ledger's database and resumes after a restart; the agent key
persists by default in its 0600 key file, so a resumed session keeps its mandate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import MerchantInfo
from amp_tools.amp.sealed import Sealer
from amp_tools.approvals import Approver
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.config import agent_key_path
from amp_tools.errors import AmpError, ConfigError, InvalidArguments, MoneyError, NotFound, ToolError
from amp_tools.ledger import Entry, LedgerBase, open_ledger
from amp_tools.money import ROUND_UP, Money
from amp_tools.owner.enforce import owner_authority
from amp_tools.payments import Guard
from amp_tools.payments.keys import checkout_key
from amp_tools.policy import BudgetPolicy
from amp_tools.policy.subbudgets import BudgetLevel, BudgetPath
from amp_tools.toolkit._state import SessionState, dump_state, load_state
from amp_tools.toolkit.budget import process_label, use_budget
from amp_tools.toolkit.directory import MerchantDirectory

__all__ = ["FxQuote", "ToolkitCore", "WalletAction", "WalletPrompt", "parse_amount",
           "resolve_budget_id"]


def parse_amount(name: str, text: str, currency: str, *, allow_zero: bool = True) -> Money:
    """A tool's decimal-string argument as money in `currency`.

    The schema pattern admits up to three decimals (KWD needs them), so a USD '0.001' gets this
    far; the model must get an `InvalidArguments` naming the field, not a bare `MoneyError`.
    """
    try:
        return Money.parse(text, currency, allow_zero=allow_zero)
    except MoneyError as exc:
        raise InvalidArguments(f"{name} {text!r}: {exc.message}",
                               hint=f"Pass {name} as a decimal string in {currency}.") from None


@dataclass(frozen=True)
class WalletAction:
    """Something only the person can do in their wallet app (link the wallet, confirm a mandate)."""

    kind: str  # "bind_wallet" | "confirm_mandate" | "confirm_purchase"
    auth_session_id: str
    summary: str


WalletPrompt = Callable[[WalletAction], Awaitable[None]]


@dataclass(frozen=True)
class FxQuote:
    """A network rate for one conversion, with the quote id that locks it for the charge (if the network gives one)."""

    rate: Decimal
    quote_id: str | None
    expires_at: datetime


def resolve_budget_id(budget_id: str | None, policy: BudgetPolicy | None) -> str:
    """The budget a toolkit spends from: named explicitly, by AMP_TOOLS_BUDGET, or by the policy's `name`."""
    chosen = budget_id or os.environ.get("AMP_TOOLS_BUDGET") or (policy.name if policy is not None else None)
    if not chosen or not str(chosen).strip():
        raise ConfigError(
            "name the budget this toolkit spends from: AmpToolkit(..., budget_id='alice-travel'), "
            "AMP_TOOLS_BUDGET, or `name:` in the policy file; toolkits share a budget only when they name the same one")
    return str(chosen).strip()


def _left_of(report: dict[str, Any], default: Money) -> Money:
    left = report.get("total", {}).get("left") if isinstance(report.get("total"), dict) else None
    if isinstance(left, Money):
        return left
    if isinstance(left, dict):
        return Money.parse(str(left["amount"]), str(left["currency"]), allow_negative=True)
    return default


class ToolkitCore:
    """Everything one agent session needs to shop and pay through AMP under a budget policy."""

    def __init__(self, client: AmpClient, policy: BudgetPolicy | None = None, *, ledger: LedgerBase | None = None,
                 approver: Approver | None = None, agent_key: AgentKey | None = None,
                 wallet_prompt: WalletPrompt | None = None, clock: Clock = SYSTEM_CLOCK,
                 run_id: str | None = None, budget_id: str | None = None, session_id: str | None = None,
                 merchants: MerchantDirectory | Iterable[MerchantInfo | Mapping[str, Any]] | str | Path | None = None,
                 wallet_name: str = "ALIPAY_HK", agent_id: str = "amp-tools-agent", idv_wait: float = 5.0,
                 aud: str = "alipayplus.com", owner_key: Any = None) -> None:
        self.client = client
        self.budget_id = resolve_budget_id(budget_id, policy)
        self.ledger = ledger if ledger is not None else open_ledger(clock=clock)
        # The budget's stored policy governs (created from `policy` if the budget is new); a different
        # `policy` is refused with the diff. See `amp_tools.toolkit.budget`.
        self.stored = use_budget(self.ledger, self.budget_id, policy, by=process_label(f"toolkit {agent_id}"))
        policy = self.policy = self.stored.policy
        # With sub-budgets (`agents:`) every payment is checked against the whole tree; `for_agent`
        # narrows a toolkit to one agent's level. Without them the single-level path is unchanged.
        self.crew_policy, self.crew_budget_id, self.agent = policy, self.budget_id, ""
        self.path: BudgetPath | None = BudgetPath.of(policy, self.budget_id) if policy.agents else None
        self.guard = Guard(policy, self.ledger, approver=approver, clock=clock, budget_id=self.budget_id,
                           path=self.path)
        # The budget owner's public key (owner_key= or AMP_TOOLS_OWNER_KEY): pay only on signed authority.
        self.guard.owner = owner_authority(owner_key)
        self.agent_key = agent_key or AgentKey.load_or_create(agent_key_path())
        self.sealer = Sealer(self.agent_key)
        self.wallet_prompt = wallet_prompt
        self.clock = clock
        self.run_id = run_id or uuid.uuid4().hex  # labels ledger rows for reports; never part of a payment's key
        self.session_id = session_id
        self.directory = MerchantDirectory.of(merchants)
        self.wallet_name = wallet_name
        self.agent_id = agent_id
        self.idv_wait = idv_wait
        self.aud = aud
        self.state = SessionState()
        self._loaded = session_id is None
        self._fx: dict[tuple[str, str], FxQuote] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    async def aclose(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------------ durable session
    async def load_session(self) -> None:
        """Bring back the session's state from the ledger (once; a no-op without a session id)."""
        if self._loaded or self.session_id is None:
            return
        stored = await self.ledger.load_session(self.session_id)
        if stored is not None:
            budget_id, data, _version = stored
            if budget_id != self.budget_id:
                raise ConfigError(f"session {self.session_id!r} belongs to budget {budget_id!r}, not "
                                  f"{self.budget_id!r}; use the budget it was started with or a new session id")
            self.state = load_state(data, self.sealer, purpose=self._purpose())
        self._loaded = True

    async def save_session(self) -> None:
        """Write the session's state to the ledger (a no-op without a session id)."""
        if self.session_id is None or not self._loaded:
            return
        await self.ledger.save_session(self.session_id, budget_id=self.budget_id,
                                       data=dump_state(self.state, self.sealer, purpose=self._purpose()))

    def _purpose(self) -> str:
        return f"session:{self.session_id}"

    # ------------------------------------------------------------------ shared helpers
    @contextlib.asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        """A per-object lock so two concurrent tool calls on one checkout never interleave.

        Sync adapters run each tool call on its own event loop in a worker thread (CrewAI runs
        parallel calls that way), so this must exclude across threads and loops: an
        `asyncio.Lock` shared by two loops never wakes the second waiter. A thread lock taken
        without blocking, polled while contended, excludes everywhere and never blocks a loop.
        """
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.Lock())
        while not lock.acquire(blocking=False):
            await asyncio.sleep(0.005)
        try:
            yield
        finally:
            lock.release()

    async def merchant(self, merchant_id: str) -> MerchantInfo:
        known = self.state.merchants.get(merchant_id)
        if known is not None:
            return known
        if self.directory is not None:
            found = self.directory.get(merchant_id)
            if found is None:
                raise NotFound(f"merchant {merchant_id!r} is not in the merchant directory",
                               hint="Call discover_merchants to see the merchant ids.")
            self.state.merchants[merchant_id] = found
            return found
        for info in await self.list_merchants():
            self.state.merchants[info.merchant_id] = info
        if merchant_id not in self.state.merchants:
            raise NotFound(f"merchant {merchant_id!r} is not in the registry",
                           hint="Call discover_merchants to see the merchant ids.")
        return self.state.merchants[merchant_id]

    async def list_merchants(self, *, query: str | None = None, category: str | None = None,
                             region: str | None = None) -> list[MerchantInfo]:
        """Merchants from the directory when the toolkit has one, else from the CP's registry (an extension)."""
        if self.directory is not None:
            return self.directory.find(query=query, category=category, region=region)
        try:
            return await self.client.list_merchants(query=query, category=category, region=region)
        except AmpError as exc:
            if exc.code == "NOT_FOUND":
                raise ToolError(
                    "this credential provider has no merchant registry (AMP defines none), and the toolkit was given "
                    "no merchant directory", code="NO_MERCHANT_REGISTRY",
                    hint="Tell the user the agent has no list of merchants to shop from. (Developers: pass "
                         "AmpToolkit(..., merchants='merchants.yaml') with each merchant's id, name, MCC and base "
                         "URL.)") from None
            raise

    def merchant_base(self, info: MerchantInfo) -> str:
        return info.base_url or f"/merchants/{info.merchant_id}"

    async def fx_quote(self, from_currency: str, to_currency: str, *, fresh: bool = False) -> FxQuote:
        """The network's quoted rate. Shown prices reuse it until it expires (at most five minutes); a
        payment asks `fresh=True`, so it reserves at the rate the quote id then locks for the charge."""
        key = (from_currency, to_currency)
        now = self.clock.now()
        cached = self._fx.get(key)
        if cached is not None and cached.expires_at > now and not fresh:
            return cached
        quote = await self.client.fx_rate(from_currency, to_currency)
        expiry = now + timedelta(minutes=5)
        if quote.expires_at:
            with contextlib.suppress(ValueError):  # an unreadable expiry keeps the five-minute default
                expiry = min(expiry, datetime.fromisoformat(quote.expires_at.replace("Z", "+00:00")))
        if quote.rate <= 0:
            raise AmpError(f"the network quoted a non-positive FX rate {quote.rate} for {from_currency}->{to_currency}",
                           code="BAD_RESPONSE")
        found = FxQuote(rate=quote.rate, quote_id=quote.quote_id, expires_at=expiry)
        self._fx[key] = found
        return found

    async def fx_rate(self, from_currency: str, to_currency: str) -> Decimal:
        if from_currency == to_currency:
            return Decimal(1)
        return (await self.fx_quote(from_currency, to_currency)).rate

    async def to_budget(self, amount: Money, *, fresh: bool = False) -> tuple[Money, Decimal | None]:
        """`amount` in the policy currency, rounded up so a spend is never understated."""
        converted, quote = await self.budget_quote(amount, fresh=fresh)
        return converted, None if quote is None else quote.rate

    async def budget_quote(self, amount: Money, *, fresh: bool = False) -> tuple[Money, FxQuote | None]:
        """`amount` in the policy currency (rounded up) and the quote it was converted at (None: same currency)."""
        if amount.currency == self.policy.currency:
            return amount, None
        quote = await self.fx_quote(amount.currency, self.policy.currency, fresh=fresh)
        return amount.convert(self.policy.currency, quote.rate, rounding=ROUND_UP), quote

    async def checkout_entry(self, merchant_id: str, checkout_id: str, amount: Money) -> Entry | None:
        """This budget's latest ledger entry for paying this checkout (any toolkit, process or restart)."""
        return await self.ledger.get_by_key(self.budget_id, checkout_key(merchant_id, checkout_id, amount))

    async def budget_left(self) -> Money:
        """What this toolkit may still spend: with sub-budgets, the smallest room of its levels."""
        if self.path is None:
            report = await self.ledger.usage_report(self.policy, self.budget_id, self.clock.now())
            return _left_of(report, self.policy.total_budget)
        lefts = [_left_of(report, level.policy.total_budget) for level, report in await self.level_reports()]
        return min(lefts, key=lambda money: money.minor)

    async def level_reports(self) -> list[tuple[BudgetLevel, dict[str, Any]]]:
        """The usage report of every level of this toolkit's budget path, root first (empty without one)."""
        if self.path is None:
            return []
        now = self.clock.now()
        return [(level, await self.ledger.usage_report(level.policy, level.budget_id, now, covers=level.covers))
                for level in self.path.levels]

    async def notify_wallet(self, action: WalletAction) -> bool:
        """Tell the person what to do in the wallet; True when a wallet prompt handled it."""
        if self.wallet_prompt is None:
            return False
        await self.wallet_prompt(action)
        return True

