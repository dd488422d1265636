"""The client holds where the AMP reference services do not (amp-reference-wire.md 9 and 11): the
travel trip on a sandbox with all eleven reference deviations on. The network would accept a replayed
L3, an L3 for another checkout, a token on another checkout, an unsigned AUTONOMOUS request, an amount
not bound to the token; the toolkit never sends one, so each checkout is paid once, with its own token,
for its own amount, and the ledger equals the network's records."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from amp_examples.travel_booking.run import run_trip
from amp_tools.conformance.chainread import disclosed, read
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.sandbox.deviations import REFERENCE_DEVIATIONS


@pytest.fixture(scope="module")
def trip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import asyncio

    ledger = tmp_path_factory.mktemp("deviations") / "ledger.db"
    config = SandboxConfig.with_reference_deviations(idv_mode="manual", seed=7)
    assert config.deviations == REFERENCE_DEVIATIONS and len(REFERENCE_DEVIATIONS) == 11
    return asyncio.run(run_trip("langchain", console=Console(file=io.StringIO()), ledger_path=str(ledger),
                                sandbox_config=config))


def _tokens(trip: dict[str, Any]) -> list[Any]:
    sandbox: Sandbox = trip["sandbox"]
    return [t for t in sandbox.state.payment_tokens.values() if t.status == "USED"]


def test_every_l3_the_client_signs_has_a_fresh_nonce(trip: dict[str, Any]) -> None:
    nonces = []
    for token in _tokens(trip):
        parsed, why = read(token.l3, "L3")
        assert parsed is not None, why
        nonces.append(parsed.payload["nonce"])
    assert len(nonces) == 3 and len(set(nonces)) == 3  # never a replay, though the network would take one


def test_each_token_pays_the_checkout_its_l3_names_for_the_amount_signed(trip: dict[str, Any]) -> None:
    sandbox: Sandbox = trip["sandbox"]
    for token in _tokens(trip):
        parsed, _ = read(token.l3, "L3")
        assert parsed is not None
        signed = disclosed(parsed)[0]["checkout"]
        payment = sandbox.state.payments[token.payment_id]
        # the network compares neither (checkout_unbound, l3_checkout_unchecked, token_amount_unbound)
        assert signed["reference_checkout_id"] == payment.checkout_id
        assert signed["total_amount"] == {"currency": payment.amount.currency, "amount": payment.amount.minor}


def test_the_ledger_equals_the_network_records_each_checkout_once(trip: dict[str, Any]) -> None:
    entries = trip["entries"]
    network = [p for p in trip["sandbox_payments"] if p["status"] == "SUCCESS"]
    assert sorted((e.checkout_id, e.amount.minor, e.amount.currency) for e in entries if e.status == "committed") == \
        sorted((p["checkoutId"], p["amount"]["cent"], p["amount"]["currency"]) for p in network)
    assert len({p["checkoutId"] for p in network}) == len(network) == 3
    assert trip["audit_ok"]


def test_no_autonomous_request_went_without_an_agent_signature(trip: dict[str, Any]) -> None:
    sandbox: Sandbox = trip["sandbox"]
    autonomous = [t for t in sandbox.state.payment_tokens.values()
                  if sandbox.state.mandates[t.mandate_id].mandate_type == "AUTONOMOUS"]
    assert autonomous and all(t.l3 for t in autonomous)  # the network would have issued without one
