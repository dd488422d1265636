"""(a) A guarded payment against the bare AMP calls it makes, same in-process sandbox, same run.

Bare: exactly the client calls of a delegated payment (sign an L3, ``applyCredential`` with it,
``startPayment``), made directly with the toolkit's `AmpClient`. Guarded: the toolkit's ``pay`` tool,
which makes those calls inside the Guard (argument validation, static policy, ledger reserve with
the policy decision, commit, audit records). Checkouts are created outside the timing for both.
The guarded side makes one AMP call the bare side does not: ``inquiryMandateSession`` after the
charge, which brings the mandate's remaining budget as the credential provider counts it into the
reply. It protects no money (the credential provider enforces the mandate, the ledger the policy)
and runs while the ledger records the commit; it is kept in the timing because the tool makes it.
Samples alternate bare / guarded so drift in the sandbox's state hits both sides alike.

`tcp=True` serves the same sandbox over loopback HTTP (uvicorn on 127.0.0.1 in a thread of this
process) and points the client at it: the real client path, with its serialisation and sockets, on
both sides. The durable SQLite commit latency (`floors`) is measured in the same run, so the
guard's added time can be set beside ``2 x commit + 0.5 ms``.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from amp_tools.amp.chain import build_l3
from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import CpCheckout
from amp_tools.amp.secret import Secret
from amp_tools.ledger import open_ledger
from amp_tools.policy import BudgetPolicy
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.toolkit import AmpToolkit
from benchmarks import floors

__all__ = ["measure"]

MERCHANT, PRODUCT = "SUNNY-TOURS", "SUN-ESIM-ASIA"  # the sandbox's USD merchant: no FX on either side
POLICY = {"name": "bench", "currency": "USD", "total_budget": "1000000.00", "per_transaction_max": "100.00",
          "windows": {"day": {"limit": "1000000.00"}}, "velocity": {"max_payments": 100000, "per": "1h"},
          "merchants": {"caps": {MERCHANT: "1000000.00"}}}


@contextlib.contextmanager
def _served(sandbox: Sandbox) -> Iterator[str]:
    """The sandbox's app on an ephemeral loopback port for the duration; yields its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(sandbox.app, host="127.0.0.1", port=0, log_level="warning",
                                           access_log=False))
    thread = threading.Thread(target=server.run, name="bench-sandbox", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the benchmark sandbox server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def _setup(tmp: str, url: str | None = None, sandbox: Sandbox | None = None, *, pg_url: str | None = None,
                 schema: str | None = None) -> tuple[Sandbox, AmpToolkit, dict[str, Any]]:
    sandbox = sandbox or Sandbox(SandboxConfig(seed=7))  # idv auto: the wallet confirms inside the call
    sandbox.roles.merchants.set_stock(MERCHANT, PRODUCT, 1_000_000)
    policy = BudgetPolicy.model_validate(POLICY)
    if pg_url:
        ledger = open_ledger(pg_url, clock=sandbox.clock, schema=schema)
    else:
        ledger = open_ledger(str(Path(tmp) / "ledger.db"), clock=sandbox.clock)
    if url is None:
        tk = AmpToolkit.for_sandbox(sandbox, policy, ledger=ledger, budget_id="bench")
    else:  # as `for_sandbox`, but over the network
        key = AgentKey.generate()
        sandbox.register_agent("bench-agent", key.public_jwk())
        client = AmpClient(url, agent_id="bench-agent", clock=sandbox.clock)
        tk = AmpToolkit(client, policy, ledger=ledger, budget_id="bench", agent_key=key, agent_id="bench-agent",
                        clock=sandbox.clock, merchants=sandbox.merchant_directory())
    specs = {s.name: s for s in tk.specs()}
    await specs["discover_merchants"].ainvoke({})
    end = sandbox.clock.now() + timedelta(days=30)
    mandate = await specs["request_mandate"].ainvoke({
        "purpose": "benchmark payments", "budget": "100000.00", "merchant_ids": [MERCHANT],
        "expires_at": end.strftime("%Y-%m-%dT%H:%M:%SZ")})
    if mandate.get("status") != "ACTIVE":
        raise RuntimeError(f"benchmark mandate is not active: {mandate}")
    search = await specs["search_offers"].ainvoke({"query": "eSIM", "merchant_ids": [MERCHANT]})
    offer = next(o for o in search["offers"] if "eSIM" in o["name"])
    return sandbox, tk, {**specs, "_offer": offer}


async def _bare(tk: AmpToolkit) -> float:
    """One payment with the bare client calls; returns the seconds the AMP calls took."""
    info = await tk.merchant(MERCHANT)
    base = tk.merchant_base(info)
    ck = await tk.client.start_checkout(base, [{"productId": PRODUCT, "quantity": 1}])
    mandate = tk.state.mandates[-1]
    assert mandate.l1 is not None and mandate.l2 is not None
    cp_checkout = CpCheckout.build(ck.total, merchant_id=MERCHANT, merchant_name=info.name, merchant_mcc=info.mcc)
    start = time.perf_counter()
    l3 = Secret(build_l3(mandate.l2.reveal(), cp_checkout.to_chain(ck.checkout_id), tk.agent_key, aud=tk.aud,
                         now=tk.clock.now()))
    issued = await tk.client.apply_credential(mandate.session_id, l1=mandate.l1, l2=mandate.l2, l3=l3,
                                              checkout=cp_checkout, mandate_type="AUTONOMOUS")
    assert issued.payment_token
    paid = await tk.client.start_payment(base, ck.checkout_id, issued.payment_token, l1=mandate.l1, l2=mandate.l2,
                                         l3=l3, idempotency_key=f"bare-{ck.checkout_id}")
    elapsed = time.perf_counter() - start
    assert paid.transaction_id
    return elapsed


async def _guarded(specs: dict[str, Any]) -> float:
    """One payment through the ``pay`` tool (the Guard path); returns its seconds."""
    ck = await specs["checkout"].ainvoke({"offer_id": specs["_offer"]["offer_id"], "quantity": 1})
    start = time.perf_counter()
    out = await specs["pay"].ainvoke({"checkout_id": ck["checkout_id"]})
    elapsed = time.perf_counter() - start
    if out.get("status") != "paid" or out.get("mode") != "delegated":
        raise RuntimeError(f"guarded benchmark payment did not pay under the mandate: {out}")
    return elapsed


async def _measure(samples: int, warmup: int, url: str | None = None, sandbox: Sandbox | None = None
                   ) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="amp-bench-guard-") as tmp:
        sandbox, tk, specs = await _setup(tmp, url, sandbox)
        try:
            bare: list[float] = []
            guarded: list[float] = []
            for i in range(warmup + samples):
                # Alternate which side goes first so neither always follows the other.
                if i % 2:
                    b, g = await _bare(tk), await _guarded(specs)
                else:
                    g, b = await _guarded(specs), await _bare(tk)
                if i >= warmup:
                    bare.append(b)
                    guarded.append(g)
            entries = await tk.ledger.entries("bench", limit=100_000)
            committed = sum(1 for e in entries if e.status == "committed")
            audit = await tk.ledger.audit.verify()
        finally:
            await tk.aclose()
            await tk.ledger.close()
    bare_ms, guarded_ms = statistics.median(bare) * 1e3, statistics.median(guarded) * 1e3
    return {"guard_overhead_ratio": round(guarded_ms / bare_ms, 3), "guard_bare_ms": round(bare_ms, 3),
            "guard_guarded_ms": round(guarded_ms, 3), "guard_added_ms": round(guarded_ms - bare_ms, 3),
            "guard_samples": samples, "guard_committed_entries": committed, "guard_audit_ok": audit.ok,
            "guard_sandbox_payments": len(sandbox.payments())}


def measure(samples: int = 60, warmup: int = 5, *, tcp: bool = True) -> dict[str, Any]:
    out = asyncio.run(_measure(samples, warmup))
    with tempfile.TemporaryDirectory(prefix="amp-bench-floor-") as tmp:
        commit_ms = floors.sqlite_commit_ms(tmp)
    out["sqlite_commit_ms"] = round(commit_ms, 4)
    out["guard_added_vs_floor"] = round(out["guard_added_ms"] / (2 * commit_ms + 0.5), 3)
    if tcp:
        sandbox = Sandbox(SandboxConfig(seed=7))
        with _served(sandbox) as url:
            over_tcp = asyncio.run(_measure(samples, warmup, url, sandbox))
        out.update({f"{key}_tcp": value for key, value in over_tcp.items()})
    return out
