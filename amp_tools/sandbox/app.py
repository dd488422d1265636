"""`Sandbox`: one FastAPI app hosting every AMP role, driven in-process or served."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from amp_tools.amp.keys import AgentKey
from amp_tools.clock import Clock, ManualClock, OffsetClock
from amp_tools.sandbox.api_admin import admin_router, payments_record
from amp_tools.sandbox.api_cp import cp_router
from amp_tools.sandbox.api_merchants import merchant_router, registry_router
from amp_tools.sandbox.api_network import acquirer_router, mpp_router, network_router
from amp_tools.sandbox.codes import Refusal
from amp_tools.sandbox.config import IdvMode, SandboxConfig
from amp_tools.sandbox.deviations import check_deviations
from amp_tools.sandbox.faults import Faults
from amp_tools.sandbox.fx import FxTable
from amp_tools.sandbox.ids import IdFactory
from amp_tools.sandbox.roles import Roles
from amp_tools.sandbox.state import Context, State

__all__ = ["Sandbox", "create_app"]

_DESCRIPTION = """A local AMP network: Credential Provider, Alipay+ (network and mandate ledger), the MPP
wallet, an acquirer, a merchant registry and travel merchants. Reference paths and shapes are kept;
routes tagged `extension` are not AMP; routes tagged `admin` are the test harness. See docs/SANDBOX.md."""


class Sandbox:
    """Every AMP role in one ASGI app with in-memory state.

    ``Sandbox().transport()`` gives an `httpx.ASGITransport` for in-process clients. The
    default clock is the wall clock (an `OffsetClock`: ``clock.advance`` or
    ``POST /_admin/advanceTime`` still jump it forward), so a prototype's rate limits, audit
    stamps and day windows follow real time; ``config.start_time`` pins a `ManualClock`
    instead, and a test may pass any controllable ``clock``.
    """

    def __init__(self, config: SandboxConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = cfg = config or SandboxConfig()
        cfg.deviations = check_deviations(cfg.deviations)
        self.clock: Clock = clock or (ManualClock(cfg.start_time) if cfg.start_time is not None else OffsetClock())
        self.faults = Faults()
        self.state = State()
        self._ctx = Context(
            config=cfg, clock=self.clock, ids=IdFactory(cfg.seed), fx=FxTable(cfg.usd_rates), faults=self.faults,
            state=self.state, aplus_key=AgentKey.generate(kid="aplus-key-1"),
            isp_key=AgentKey.generate(kid="mpp-key-1"), idv_mode=cfg.idv_mode,
            per_task_limit=cfg.per_task_limit, daily_limit=cfg.daily_limit)
        for limit in (cfg.per_task_limit, cfg.daily_limit):
            if limit is not None and limit.currency != cfg.wallet_currency:
                raise ValueError(f"delegation limits must be in the wallet currency {cfg.wallet_currency}, "
                                 f"got {limit.currency}")
        self.roles = Roles(self._ctx)
        self.app = self._build_app()

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="amp-tools AMP sandbox", version="0.1.0", description=_DESCRIPTION)
        for router in (cp_router(self.roles), network_router(self.roles), mpp_router(self.roles),
                       acquirer_router(self.roles), registry_router(self.roles), merchant_router(self.roles),
                       admin_router(self.roles)):
            app.include_router(router)
        app.state.sandbox = self
        return app

    # ------------------------------------------------------------------ harness API
    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    @property
    def aplus_public_jwk(self) -> dict[str, Any]:
        """The Alipay+ public key a client pins to verify L1."""
        return self._ctx.aplus_key.public_jwk()

    @property
    def isp_public_jwk(self) -> dict[str, Any]:
        return self._ctx.isp_key.public_jwk()

    def register_agent(self, agent_id: str, public_jwk: dict[str, Any]) -> None:
        """The operator's onboarding step: the wallet binds this key in L2 cnf for the agent's mandates."""
        with self.state.lock:
            try:
                self.roles.network.register_agent(agent_id, public_jwk)
            except Refusal as exc:
                raise ValueError(exc.text) from None

    def complete_idv(self, auth_session_id: str, approve: bool = True) -> str:
        """The person's side of IDV; returns the wallet's auth status (``SUCCESS`` or ``FAILED``)."""
        with self.state.lock:
            try:
                return self.roles.wallet.complete_idv(auth_session_id, approve=approve).status
            except Refusal as exc:
                raise ValueError(exc.text) from None

    @property
    def idv_mode(self) -> IdvMode:
        return self._ctx.idv_mode

    @idv_mode.setter
    def idv_mode(self, mode: IdvMode) -> None:
        if mode not in ("auto", "manual", "reject"):
            raise ValueError(f"idv_mode {mode!r} must be 'auto', 'manual' or 'reject'")
        self._ctx.idv_mode = mode

    def payments(self) -> list[dict[str, Any]]:
        """Same as ``GET /_admin/payments``."""
        with self.state.lock:
            return payments_record(self.roles)

    def merchant_directory(self) -> list[dict[str, Any]]:
        """Every merchant's id, name, MCC and base URL: what a deployment configures for a CP with no registry
        (`AmpToolkit(..., merchants=...)`); the registry extension serves the same profiles."""
        with self.state.lock:
            return [{k: v for k, v in self.roles.merchants.profile(rt).items() if k != "maxNegotiationRounds"}
                    for rt in self.state.merchants.values()]

    def mandate(self, mandate_id: str) -> dict[str, Any]:
        """Same as ``GET /network/mandate/{id}`` (applies the clock first)."""
        with self.state.lock:
            return self.roles.network.mandate_view(self.roles.network.mandate(mandate_id))


def create_app(config: SandboxConfig | None = None) -> FastAPI:
    """An app for uvicorn (``uvicorn amp_tools.sandbox:create_app --factory``)."""

    return Sandbox(config, clock=OffsetClock()).app
