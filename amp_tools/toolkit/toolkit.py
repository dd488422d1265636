"""`AmpToolkit`: one agent session's AMP client, Guard, agent key and state, and its tool specs.

The toolkit is what a program builds once per user session; `toolkit.specs()` is the tool list
every adapter wraps. The person's side (approvals, wallet confirmation) is wired in here by the
program through `approver` and `wallet_prompt`, never through a tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import MerchantInfo
from amp_tools.approvals import Approver
from amp_tools.clock import SYSTEM_CLOCK, Clock
from amp_tools.errors import AmpError, InvalidArguments, MoneyError, NotFound
from amp_tools.guard import Guard
from amp_tools.ledger import LedgerBase, open_ledger
from amp_tools.money import ROUND_UP, Money
from amp_tools.policy import BudgetPolicy
from amp_tools.toolkit.state import SessionState
from amp_tools.tools.spec import ToolSpec

if TYPE_CHECKING:
    from amp_tools.sandbox import Sandbox

__all__ = ["AmpToolkit", "WalletAction", "WalletPrompt", "parse_amount"]


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


class AmpToolkit:
    """Everything one agent session needs to shop and pay through AMP under a budget policy."""

    def __init__(self, client: AmpClient, policy: BudgetPolicy, *, ledger: LedgerBase | None = None,
                 approver: Approver | None = None, agent_key: AgentKey | None = None,
                 wallet_prompt: WalletPrompt | None = None, clock: Clock = SYSTEM_CLOCK,
                 run_id: str | None = None, budget_id: str = "default", wallet_name: str = "ALIPAY_HK",
                 agent_id: str = "amp-tools-agent", wallet_timeout: float = 120.0,
                 aud: str = "alipayplus.com") -> None:
        self.client = client
        self.policy = policy
        self.ledger = ledger if ledger is not None else open_ledger(clock=clock)
        self.guard = Guard(policy, self.ledger, approver=approver, clock=clock, budget_id=budget_id)
        self.agent_key = agent_key or AgentKey.generate()
        self.wallet_prompt = wallet_prompt
        self.clock = clock
        self.run_id = run_id or uuid.uuid4().hex
        self.budget_id = budget_id
        self.wallet_name = wallet_name
        self.agent_id = agent_id
        self.wallet_timeout = wallet_timeout
        self.aud = aud
        self.state = SessionState()
        self._fx: dict[tuple[str, str], tuple[Decimal, datetime]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ construction
    @classmethod
    def for_sandbox(cls, sandbox: Sandbox, policy: BudgetPolicy, **kwargs: Any) -> AmpToolkit:
        """A toolkit wired to an in-process sandbox; the agent key is registered as onboarding would."""
        key = kwargs.pop("agent_key", None) or AgentKey.generate()
        agent_id = kwargs.pop("agent_id", "amp-tools-agent")
        sandbox.register_agent(agent_id, key.public_jwk())
        client = AmpClient("http://sandbox", transport=sandbox.transport(), agent_id=agent_id,
                           clock=kwargs.get("clock"))
        kwargs.setdefault("clock", sandbox.clock)
        return cls(client, policy, agent_key=key, agent_id=agent_id, **kwargs)

    def specs(self) -> list[ToolSpec]:
        """The tool list every adapter wraps."""
        from amp_tools.toolkit.specs import build_specs

        return build_specs(self)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def reconcile(self, *, timeout: timedelta = timedelta(minutes=2)) -> Any:
        """Settle reservations older than `timeout` with the merchants' order status (run at start-up)."""
        from amp_tools.toolkit.reporting import reconcile

        return await reconcile(self, timeout=timeout)

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
        for info in await self.client.list_merchants():
            self.state.merchants[info.merchant_id] = info
        if merchant_id not in self.state.merchants:
            raise NotFound(f"merchant {merchant_id!r} is not in the registry",
                           hint="Call discover_merchants to see the merchant ids.")
        return self.state.merchants[merchant_id]

    def merchant_base(self, info: MerchantInfo) -> str:
        return info.base_url or f"/merchants/{info.merchant_id}"

    async def fx_rate(self, from_currency: str, to_currency: str) -> Decimal:
        """The network's quoted rate, cached until it expires (at most five minutes)."""
        if from_currency == to_currency:
            return Decimal(1)
        key = (from_currency, to_currency)
        now = self.clock.now()
        cached = self._fx.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        quote = await self.client.fx_rate(from_currency, to_currency)
        expiry = now + timedelta(minutes=5)
        if quote.expires_at:
            with contextlib.suppress(ValueError):  # an unreadable expiry keeps the five-minute default
                expiry = min(expiry, datetime.fromisoformat(quote.expires_at.replace("Z", "+00:00")))
        if quote.rate <= 0:
            raise AmpError(f"the network quoted a non-positive FX rate {quote.rate} for {from_currency}->{to_currency}",
                           code="BAD_RESPONSE")
        self._fx[key] = (quote.rate, expiry)
        return quote.rate

    async def to_budget(self, amount: Money) -> tuple[Money, Decimal | None]:
        """`amount` in the policy currency, rounded up so a spend is never understated."""
        if amount.currency == self.policy.currency:
            return amount, None
        rate = await self.fx_rate(amount.currency, self.policy.currency)
        return amount.convert(self.policy.currency, rate, rounding=ROUND_UP), rate

    async def budget_left(self) -> Money:
        report = await self.ledger.usage_report(self.policy, self.budget_id, self.clock.now())
        left = report.get("total", {}).get("left") if isinstance(report.get("total"), dict) else None
        if isinstance(left, Money):
            return left
        if isinstance(left, dict):
            return Money.parse(str(left["amount"]), str(left["currency"]), allow_negative=True)
        return self.policy.total_budget

    async def notify_wallet(self, action: WalletAction) -> bool:
        """Tell the person what to do in the wallet; True when a wallet prompt handled it."""
        if self.wallet_prompt is None:
            return False
        await self.wallet_prompt(action)
        return True
