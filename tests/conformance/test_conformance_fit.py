"""The checker fitted to real CPs: purchases sized from the cheapest product, the cap only where the
operator sets one, the wallet found where identity verification points, the reference profile, and a
summary that reads at 80 columns."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.conformance import Outcome, run_conformance
from amp_tools.conformance.profiles import profile_defaults
from amp_tools.sandbox import Sandbox, SandboxConfig
from tests._shared._served import served_sandbox
from tests.conformance.conformance_helpers import target_for

MERCHANT_NO_MANDATE = ["merchant.search.shape", "merchant.checkout.shape", "merchant.rejects_bad_quantity",
                       "merchant.error_envelope"]


async def test_without_a_cap_every_purchase_is_sized_from_the_cheapest_product(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox), transport=sandbox.transport(), only=["payment.*"])
    assert report.count(Outcome.SKIPPED) == 0 and report.count(Outcome.FAIL) == 0
    # the sandbox's cheapest SUNNY-TOURS product is 19.99: every captured payment is one unit of it
    assert {p["amount"]["cent"] for p in sandbox.payments() if p["status"] == "SUCCESS"} == {1999}
    budgets = {m.total.minor for m in sandbox.state.mandates.values()}
    assert max(budgets) <= 3 * 1999 and min(budgets) == 1999


async def test_a_cap_below_the_need_names_the_flag_and_the_value_to_raise_it_to(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox, max_amount_minor=2 * 1999), transport=sandbox.transport())
    skipped = {r.spec.id: r.reason for r in report.results if r.outcome is Outcome.SKIPPED}
    assert report.count(Outcome.FAIL) == 0
    # only checks needing a 3x mandate are skipped; each says which flag and how far
    assert set(skipped) == {"token.merchant_cross_checked", "merchant.verifies_chain", "payment.start_payment.shape",
                            "payment.idempotent_replay", "payment.token_single_use"}
    assert set(skipped.values()) == {
        "needs a mandate of 5997 minor units (3x the cheapest product, 1999); --max-amount-minor is 3998: "
        "raise it to 5997 to run every purchase check"}
    passing = {r.spec.id for r in report.results if r.outcome is Outcome.PASS}
    assert "--max-amount-minor" not in " ".join(r.reason for r in report.results if r.spec.id in passing)


async def test_merchant_checks_that_need_no_mandate_never_depend_on_the_cap(sandbox: Sandbox) -> None:
    report = await run_conformance(target_for(sandbox, max_amount_minor=1), transport=sandbox.transport(),
                                   only=["merchant.*", "cp.*"])
    outcomes = {r.spec.id: r.outcome for r in report.results}
    assert all(outcomes[c] is Outcome.PASS for c in MERCHANT_NO_MANDATE), outcomes
    assert outcomes["merchant.verifies_chain"] is Outcome.SKIPPED  # it pays, so the cap holds it


class AuthUrlWallet(httpx.AsyncBaseTransport):
    """The sandbox with its wallet moved to another host (http://wallet-sandbox/mpp), no wallet at <cp>/mpp,
    and an ``idv.authUrl`` pointing the person there when `announce` is on."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, announce: bool) -> None:
        self.inner, self.announce = inner, announce

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "sandbox" and request.url.path.startswith("/mpp"):
            return httpx.Response(404, json={"detail": "Not Found"})
        if request.url.host == "wallet-sandbox":
            request = httpx.Request(request.method, request.url.copy_with(host="sandbox"),
                                    headers=request.headers, content=await request.aread())
        response = await self.inner.handle_async_request(request)
        if not self.announce or not request.url.path.endswith(("/addPaymentMethod", "/createMandateSession")):
            return response
        body = json.loads(await response.aread())
        if isinstance(body.get("idv"), dict):
            body["idv"]["authUrl"] = f"http://wallet-sandbox/mpp/authorize?session={body['idv']['authSessionId']}"
        return httpx.Response(response.status_code, json=body)


async def test_the_wallet_is_found_where_the_cps_identity_verification_points() -> None:
    sb = Sandbox(SandboxConfig(seed=3, idv_mode="manual"))
    target = target_for(sb, idv_timeout_seconds=3.0, idv_grace_seconds=0.0)
    report = await run_conformance(target, transport=AuthUrlWallet(sb.transport(), announce=True),
                                   only=["cp.*", "wallet.*", "chain.l2.*"])
    assert {r.spec.id: r.outcome for r in report.results if r.outcome is not Outcome.PASS} == {}
    assert len(sb.state.mandates) >= 1 and len(sb.state.binding_tokens) == 1


async def test_without_a_pointer_the_skip_names_the_wallet_tried_and_the_flag() -> None:
    sb = Sandbox(SandboxConfig(seed=3, idv_mode="manual"))
    target = target_for(sb, idv_timeout_seconds=2.0, idv_grace_seconds=0.0)
    report = await run_conformance(target, transport=AuthUrlWallet(sb.transport(), announce=False),
                                   only=["cp.query_payment_method_list.shape", "chain.l1.claims"])
    reasons = {r.spec.id: r.reason for r in report.results}
    assert all(r.outcome is Outcome.SKIPPED for r in report.results)
    reason = reasons["chain.l1.claims"]
    assert "the wallet at http://sandbox/mpp answered completeIdv with HTTP 404" in reason
    assert "pass --wallet URL" in reason and "http://HOST:8899/mpp" in reason


def test_the_reference_profile_fills_only_what_is_not_given() -> None:
    assert profile_defaults("reference", "http://10.1.2.3:8081/credential-provider") == {
        "allow_waiting": True, "wallet": "http://10.1.2.3:8899/mpp", "merchant_name": "UGG Demo Store",
        "merchant_mcc": "5411"}
    with pytest.raises(ValueError, match="unknown --profile 'ref'; expected one of reference"):
        profile_defaults("ref", "http://localhost")


@pytest.fixture
def served_reference() -> Iterator[tuple[Sandbox, str]]:
    with served_sandbox(SandboxConfig.with_reference_deviations()) as running:
        yield running


def test_summary_first_fits_80_columns_then_details(served_reference: tuple[Sandbox, str]) -> None:
    _, url = served_reference
    # --profile reference points the wallet at port 8899 of the CP host; the served sandbox's is under --wallet
    res = CliRunner().invoke(app, ["conformance", "--cp", url, "--merchant", f"{url}/merchants/SUNNY-TOURS",
                                   "--profile", "reference", "--wallet", f"{url}/mpp", "--merchant-name",
                                   "Sunny Tours Bali", "--merchant-mcc", "4722", "--idv-timeout", "2",
                                   "--aplus-jwk", f"{url}/network/keys"],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 1, res.output
    lines = res.stdout.splitlines()
    details = lines.index(next(line for line in lines if line.startswith("Details")))
    summary = lines[:details]
    assert all(len(line) <= 80 for line in summary), [line for line in summary if len(line) > 80]
    assert re.fullmatch(r"AMP conformance: 40 checks, \d+ requests, [\d.]+ s", summary[0])
    assert summary[1].startswith("29 passed, 11 failed, 0 skipped: 9 MUST failed")
    fail_lines = [line for line in summary if line.startswith("  FAIL ")]
    assert len(fail_lines) == 11
    assert any(re.fullmatch(r"  FAIL SHOULD +mandate\.refusal_visible +mandates", line) for line in fail_lines)
    assert any(re.fullmatch(r"  FAIL MUST +token\.l3_nonce_replay +token issuance", line) for line in fail_lines)
    # the details list every check, then the FAIL evidence
    assert sum(1 for line in lines[details:] if re.match(r"(PASS|FAIL|SKIPPED) +(MUST|SHOULD) ", line)) == 40
    assert "POST " in res.stdout[res.stdout.index("Details"):]


def test_an_auth_url_on_a_host_the_checker_may_not_touch_is_ignored() -> None:
    from amp_tools.conformance.target import wallet_from_auth_url

    assert wallet_from_auth_url("http://127.0.0.1:8899/mpp/authorize?session=abc", False) == "http://127.0.0.1:8899/mpp"
    assert wallet_from_auth_url("https://wallet.evil.example/mpp/authorize", False) is None
    assert wallet_from_auth_url("https://wallet.example/mpp/authorize", True) == "https://wallet.example/mpp"
    assert wallet_from_auth_url("", False) is None
