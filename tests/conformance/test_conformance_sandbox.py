"""The checker against our sandbox (every MUST passes) and against the reference's deviations
(exactly the checks for those deviations fail), in-process through httpx.ASGITransport."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from amp_tools.clock import OffsetClock
from amp_tools.conformance import Outcome, run_conformance, select_checks
from amp_tools.conformance.report_json import to_json
from amp_tools.sandbox import Sandbox, SandboxConfig
from amp_tools.sandbox import deviations as D
from tests.conformance.conformance_helpers import HidingTransport, SubstitutionPaid, target_for

#: each reference deviation (amp-reference-wire.md 9 and 11) and the one check that must catch it
CAUGHT_BY = {
    D.L3_NONCE_REPLAY: "token.l3_nonce_replay",
    D.L3_CHECKOUT_UNCHECKED: "token.l3_checkout_matches_request",
    D.CHECKOUT_UNBOUND: "payment.no_substitution",
    D.REFUSAL_INVISIBLE: "mandate.refusal_visible",
    D.MERCHANT_CHAIN_UNCHECKED: "merchant.verifies_chain",
    D.AUTONOMOUS_WITHOUT_L3: "token.autonomous_requires_l3",
    D.L3_KID_UNCHECKED: "token.l3_kid_bound",
    D.TOKEN_AMOUNT_UNBOUND: "payment.amount_bound_to_token",
    D.MERCHANT_UNCHECKED: "token.merchant_cross_checked",
    D.TOKENS_LISTED_TO_ALL: "privacy.tokens_isolated",
    D.BUDGET_NOT_RELEASED: "payment.budget_released_after_failure",
}


async def test_our_sandbox_passes_every_check(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox), transport=sandbox.transport())
    outcomes = {r.spec.id: (r.outcome, r.reason) for r in report.results}
    assert len(report.results) == len(select_checks()) >= 38
    assert {i: o for i, o in outcomes.items() if o[0] is not Outcome.PASS} == {}
    assert report.must_all_pass()
    assert sum(r.spec.level == "MUST" for r in report.results) >= 30
    # the checker really moved money and time on the sandbox: payments captured, a token expired
    assert sorted(p["status"] for p in sandbox.payments()) == ["FAIL", "FAIL", "SUCCESS", "SUCCESS", "SUCCESS"]
    assert "EXPIRED" in {t.status for t in sandbox.state.payment_tokens.values()}
    assert sandbox.clock.now() - sandbox.config.start_time >= timedelta(seconds=610)  # type: ignore[operator]
    assert 60 < report.requests_sent <= 400


async def test_reference_deviations_fail_exactly_their_checks(reference_like: Sandbox) -> None:
    report = await run_conformance(target_for(reference_like, idv_timeout_seconds=2.0),
                                   transport=reference_like.transport())
    assert len(CAUGHT_BY) == 11
    assert report.failing_ids() == set(CAUGHT_BY.values())
    assert report.count(Outcome.SKIPPED) == 0
    assert not report.must_all_pass() and report.must_failed()
    fails = {r.spec.id: r for r in report.results if r.outcome is Outcome.FAIL}
    assert fails["payment.amount_bound_to_token"].reason.startswith("a token issued for 1.99 USD paid checkout CKO-")
    assert fails["payment.amount_bound_to_token"].reason.endswith("of 19.99 USD")
    assert "got a payment token" in fails["token.merchant_cross_checked"].reason
    assert fails["payment.budget_released_after_failure"].spec.level == "SHOULD"
    assert "remaining=0" in fails["payment.budget_released_after_failure"].reason


@pytest.mark.parametrize("deviation", sorted(CAUGHT_BY))
async def test_each_deviation_is_caught_by_its_own_check(deviation: str) -> None:
    sb = Sandbox(SandboxConfig(seed=5, deviations=frozenset({deviation})))
    # a refusal the wallet never reports is only seen by waiting; two seconds are enough on a sandbox
    report = await run_conformance(target_for(sb, idv_timeout_seconds=2.0), transport=sb.transport())
    assert report.failing_ids() == {CAUGHT_BY[deviation]}


async def test_fail_evidence_is_the_exact_exchange_with_secrets_redacted(reference_like: Sandbox) -> None:
    report = await run_conformance(target_for(reference_like), transport=reference_like.transport(),
                                   only=["token.autonomous_requires_l3"])
    [result] = report.results
    assert result.outcome is Outcome.FAIL
    [ex] = result.exchanges
    assert ex.method == "POST" and ex.url == "http://sandbox/credential-provider/applyCredential"
    assert "l3Serialized" not in ex.request and set(ex.request) == {"sessionId", "l1Serialized", "l2Serialized",
                                                                    "checkout"}
    assert ex.request["checkout"]["totalAmount"] == {"cent": 1999, "currency": "USD"}
    assert ex.request["l2Serialized"].startswith("eyJhbGci") and "[redacted," in ex.request["l2Serialized"]
    assert ex.status == 200 and ex.response["success"] is True and ex.response["mandateType"] == "AUTONOMOUS"
    assert ex.response["paymentToken"].startswith("28166623…[redacted, 40 chars]")
    text = to_json(report)
    secrets = [t.l1 for t in reference_like.state.binding_tokens.values()]
    secrets += [m.l2 for m in reference_like.state.mandates.values()]
    secrets += list(reference_like.state.payment_tokens) + list(reference_like.state.binding_tokens)
    assert secrets and not [s for s in secrets if s in text]
    assert json.loads(text)["checks"][0]["exchanges"][0]["response"]["mandateType"] == "AUTONOMOUS"


async def test_no_clock_control_skips_token_expiry(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox), transport=HidingTransport(sandbox.transport(), "/_admin"))
    by_id = {r.spec.id: r for r in report.results}
    assert report.failing_ids() == set()
    assert [r.spec.id for r in report.results if r.outcome is Outcome.SKIPPED] == ["payment.token_expiry"]
    assert "offers no clock control" in by_id["payment.token_expiry"].reason
    assert "pass --allow-waiting to wait 610 s instead" in by_id["payment.token_expiry"].reason


async def test_no_agent_registration_skips_what_needs_a_bound_key(sandbox: Sandbox) -> None:
    hiding = HidingTransport(sandbox.transport(), "/network/agents")
    report = await run_conformance(target_for(sandbox), transport=hiding)
    by_id = {r.spec.id: r for r in report.results}
    assert report.failing_ids() == set()
    l3 = by_id["token.l3_kid_bound"]
    assert l3.outcome is Outcome.SKIPPED and "has no registered public key" in l3.reason
    assert by_id["cp.add_payment_method.shape"].outcome is Outcome.PASS
    assert by_id["privacy.tokens_isolated"].outcome is Outcome.PASS
    assert by_id["merchant.error_envelope"].outcome is Outcome.PASS


async def test_without_merchant_or_pinned_key(sandbox: Sandbox) -> None:
    from amp_tools.conformance import Target

    report = await run_conformance(Target(cp="http://sandbox"), transport=sandbox.transport())
    by_id = {r.spec.id: r for r in report.results}
    assert by_id["chain.l1.signature"].outcome is Outcome.SKIPPED
    assert "--aplus-jwk" in by_id["chain.l1.signature"].reason
    assert by_id["merchant.search.shape"].reason == "no merchant under test (pass --merchant URL)"
    assert by_id["chain.l1.claims"].outcome is Outcome.PASS
    assert not report.must_failed() and not report.must_all_pass()


async def test_request_budget_bounds_the_run(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox), transport=sandbox.transport(), max_requests=12)
    assert report.requests_sent == 12
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert skipped and all("budget of 12 requests" in r.reason or "requests" in r.reason for r in skipped[-3:])
    assert report.failing_ids() == set()


async def test_the_checker_completes_idv_as_the_person_when_the_wallet_waits() -> None:
    sb = Sandbox(SandboxConfig(seed=3, idv_mode="manual"))
    report = await run_conformance(target_for(sb, idv_grace_seconds=0.0), transport=sb.transport())
    assert report.failing_ids() == set() and report.count(Outcome.SKIPPED) == 0
    completions = [a for a in sb.state.mpp_auths.values() if a.status == "SUCCESS"]
    assert len(completions) == len(sb.state.binding_tokens) + len(sb.state.mandates) >= 20


async def test_without_a_wallet_to_act_on_everything_waits_is_skipped_not_failed() -> None:
    sb = Sandbox(SandboxConfig(seed=3, idv_mode="manual"))
    target = target_for(sb, idv_grace_seconds=0.0, idv_timeout_seconds=0.3)
    report = await run_conformance(target, transport=HidingTransport(sb.transport(), "/mpp"))
    by_id = {r.spec.id: r for r in report.results}
    assert report.failing_ids() == set()
    assert by_id["cp.add_payment_method.shape"].outcome is Outcome.SKIPPED
    assert "pass --wallet" in by_id["cp.add_payment_method.shape"].reason
    assert by_id["cp.error_envelope"].outcome is Outcome.PASS
    assert by_id["merchant.search.shape"].outcome is Outcome.PASS


async def test_a_broken_step_fails_its_owner_and_skips_the_rest(sandbox: Sandbox) -> None:
    broken = HidingTransport(sandbox.transport(), "/merchants/SUNNY-TOURS/startCheckout")
    report = await run_conformance(target_for(sandbox), transport=broken)
    by_id = {r.spec.id: r for r in report.results}
    assert report.failing_ids() == {"merchant.checkout.shape"}
    assert by_id["merchant.search.shape"].outcome is Outcome.PASS
    assert by_id["merchant.checkout.shape"].exchanges[0].status == 404
    assert by_id["payment.no_substitution"].outcome is Outcome.SKIPPED
    assert "set-up step 'merchant' failed: startCheckout did not return a checkout" in \
        by_id["payment.no_substitution"].reason


async def test_l1_signature_under_the_published_key_or_a_wrong_pin(sandbox: Sandbox) -> None:
    from amp_tools.amp.keys import AgentKey
    from amp_tools.conformance import Target

    published = Target(cp="http://sandbox", aplus_jwks_url="http://sandbox/network/keys")
    report = await run_conformance(published, transport=sandbox.transport(), only=["chain.l1.signature"])
    [ok] = report.results
    assert ok.outcome is Outcome.PASS
    assert ok.reason == "verified under the key 'aplus-key-1' published at http://sandbox/network/keys"
    wrong = Target(cp="http://sandbox", aplus_jwk=AgentKey.generate(kid="aplus-key-1").public_jwk())
    report = await run_conformance(wrong, transport=sandbox.transport(), only=["chain.l1.signature"])
    [bad] = report.results
    assert bad.outcome is Outcome.FAIL
    assert bad.reason == "L1 signature does not verify: InvalidJWSSignature under the pinned Alipay+ key"
    assert bad.exchanges[0].url == "http://sandbox/credential-provider/queryPaymentMethodList"


async def test_allowed_to_wait_the_checker_waits_out_a_short_token_lifetime() -> None:
    sb = Sandbox(SandboxConfig(seed=4, payment_token_ttl_seconds=2), clock=OffsetClock())
    target = target_for(sb, token_ttl_seconds=2, allow_waiting=True)
    report = await run_conformance(target, transport=HidingTransport(sb.transport(), "/_admin"),
                                   only=["payment.token_expiry"])
    [result] = report.results
    assert result.outcome is Outcome.PASS
    assert result.reason.startswith("refused, waited 3 s (HTTP 200: ACQUIRER_FAILED / A+ network processing "
                                    "failed: payment token expired")


@pytest.mark.parametrize(("deviations", "outcome"), [(frozenset(), Outcome.PASS),
                                                     (frozenset({D.BUDGET_NOT_RELEASED}), Outcome.FAIL)])
async def test_budget_release_falls_back_to_an_expired_token(deviations: frozenset[str], outcome: Outcome) -> None:
    sb = Sandbox(SandboxConfig(seed=4, deviations=deviations))
    report = await run_conformance(target_for(sb), transport=SubstitutionPaid(sb.transport()),
                                   only=["payment.budget_released_after_failure"])
    [result] = report.results
    assert result.outcome is outcome
    assert "after its token expired unused (clock moved 610 s)" in result.reason
    if outcome is Outcome.FAIL:
        assert "AUTONOMOUS budget exceeded: checkout=1999 > remaining=0" in result.reason
        assert [e.url.rsplit("/", 1)[-1] for e in result.exchanges] == ["applyCredential", "applyCredential"]


def test_unknown_deviation_names_are_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown sandbox deviation\\(s\\) no_such_gap; expected some of "
                                         "autonomous_without_l3, budget_not_released"):
        Sandbox(SandboxConfig(deviations=frozenset({"no_such_gap", D.L3_KID_UNCHECKED})))
    assert SandboxConfig.with_reference_deviations(seed=1).deviations == D.REFERENCE_DEVIATIONS == set(CAUGHT_BY)
