"""The command over a real loopback port (the sandbox's serving helper), its outputs and exit codes,
and the safety rules that keep it off hosts the operator does not own."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amp_tools.cli import app
from amp_tools.conformance import Target, is_safe_host, select_checks
from amp_tools.errors import ConfigError
from amp_tools.sandbox import Sandbox, SandboxConfig
from tests._shared._served import free_port, served_sandbox


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    with served_sandbox(SandboxConfig()) as running:
        yield running


@pytest.fixture
def served_reference_like() -> Iterator[tuple[Sandbox, str]]:
    with served_sandbox(SandboxConfig.with_reference_deviations()) as running:
        yield running


#: what the AMP reference services fail (amp-reference-wire.md 9 and 11; docs/CONFORMANCE.md says the same)
REFERENCE_FAILS = {"token.autonomous_requires_l3", "token.l3_kid_bound", "token.merchant_cross_checked",
                   "payment.amount_bound_to_token", "payment.budget_released_after_failure",
                   "privacy.tokens_isolated", "token.l3_nonce_replay", "token.l3_checkout_matches_request",
                   "payment.no_substitution", "mandate.refusal_visible", "merchant.verifies_chain"}


def _args(url: str, *extra: str) -> list[str]:
    return ["conformance", "--cp", url, "--merchant", f"{url}/merchants/SUNNY-TOURS", *extra]


def test_over_loopback_every_must_passes_and_exit_0(served: tuple[Sandbox, str], tmp_path: Path) -> None:
    sandbox, url = served
    key = tmp_path / "aplus.jwk"
    key.write_text(json.dumps(sandbox.aplus_public_jwk))
    junit = tmp_path / "report.xml"
    res = CliRunner().invoke(app, _args(url, "--aplus-jwk", str(key), "--json", "--junit", str(junit)))
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["summary"]["PASS"] == len(select_checks()) and report["summary"]["allMustPassed"] is True
    assert report["targets"]["cp"] == f"{url}/credential-provider"
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(select_checks())) and suite.get("failures") == "0"
    assert suite.get("skipped") == "0"


def test_the_key_the_served_sandbox_publishes(served: tuple[Sandbox, str]) -> None:
    _, url = served
    res = CliRunner().invoke(app, _args(url, "--json", "--only", "chain.*", "--aplus-jwk", f"{url}/network/keys"))
    assert res.exit_code == 0, res.output
    checks = {c["id"]: c for c in json.loads(res.stdout)["checks"]}
    expected = f"verified under the key 'aplus-key-1' published at {url}/network/keys"
    assert checks["chain.l1.signature"]["reason"] == expected


def test_a_skipped_must_is_not_a_pass(served: tuple[Sandbox, str]) -> None:
    _, url = served
    res = CliRunner().invoke(app, _args(url, "--json", "--only", "chain.*"))
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert [c["id"] for c in report["checks"] if c["outcome"] == "SKIPPED"] == ["chain.l1.signature"]
    allowed = CliRunner().invoke(app, _args(url, "--json", "--only", "chain.*", "--allow-skipped"))
    assert allowed.exit_code == 0


def test_reference_like_fails_with_evidence_in_table_and_junit(served_reference_like: tuple[Sandbox, str],
                                                               tmp_path: Path) -> None:
    _, url = served_reference_like
    junit = tmp_path / "report.xml"
    res = CliRunner().invoke(app, _args(url, "--junit", str(junit), "--idv-timeout", "2"), env={"COLUMNS": "200"})
    assert res.exit_code == 1
    assert "FAIL token.autonomous_requires_l3" in res.stdout
    assert f"POST {url}/credential-provider/applyCredential" in res.stdout
    assert "MUST failed" in res.stdout
    suite = ET.parse(junit).getroot()
    failed = {c.get("name"): c.find("failure") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert set(failed) == REFERENCE_FAILS
    evidence = json.loads(failed["privacy.tokens_isolated"].text or "[]")
    assert evidence[0]["url"] == f"{url}/credential-provider/queryPaymentMethodList"
    assert evidence[0]["request"] == {}
    assert "[redacted," in evidence[0]["response"]["paymentMethods"][0]["l1Serialized"]
    assert failed["payment.budget_released_after_failure"].get("type") == "SHOULD-violation"


def test_list_and_usage_errors() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["conformance", "--list"], env={"COLUMNS": "220"})
    assert listed.exit_code == 0
    assert all(spec.id in listed.stdout for spec, _ in select_checks())
    with pytest.raises(ConfigError, match="neither loopback nor a sandbox host"):
        runner.invoke(app, ["conformance", "--cp", "https://cp.example.com"], catch_exceptions=False)
    with pytest.raises(ConfigError, match="--cp URL is required"):
        runner.invoke(app, ["conformance"], catch_exceptions=False)


@pytest.mark.parametrize(("host", "safe"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("[::1]", True), ("localhost", True), ("api.localhost", True),
    ("sandbox", True), ("api-sandbox.example.com", True), ("sandbox.alipay.example", True),
    ("pay_sandbox.example", True), ("example.com", False), ("10.0.0.5", False), ("localhost.evil.example", False),
    ("notsandboxed.example", False), ("sandboxer.example", False), ("", False),
])
def test_safe_hosts(host: str, safe: bool) -> None:
    assert is_safe_host(host) is safe


def test_target_refuses_unsafe_or_odd_urls_unless_owned() -> None:
    with pytest.raises(ConfigError, match=r"--merchant host 'shop\.example\.com'"):
        Target(cp="http://127.0.0.1:1", merchant="https://shop.example.com")
    with pytest.raises(ConfigError, match="not an http"):
        Target(cp="ftp://localhost/cp")
    owned = Target(cp="https://cp.example.com/credential-provider/", owner_confirmed=True)
    assert owned.cp_base == "https://cp.example.com/credential-provider"
    assert owned.wallet_base == "https://cp.example.com/mpp"
    with pytest.raises(ValueError, match="max_amount_minor"):
        Target(cp="http://localhost", max_amount_minor=0)


def test_docs_list_every_check_with_its_level_and_source() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md").read_text(encoding="utf-8")
    rows: dict[str, str] = {}
    for line in doc.splitlines():  # the first table naming a check is its definition
        if line.startswith("| `"):
            rows.setdefault(line.split("|")[1].strip().strip("`"), line)
    for spec, _ in select_checks():
        assert spec.id in rows, spec.id
        cells = [c.strip() for c in rows[spec.id].split("|")]
        assert cells[2] == spec.level, spec.id
        assert cells[3] == spec.source.replace("amp-protocol.md ", ""), spec.id
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"reports {len(select_checks())} checks" in readme


def test_an_unreachable_target_is_named_in_the_summary() -> None:
    port = free_port()  # nothing listens there
    res = CliRunner().invoke(app, ["conformance", "--cp", f"http://127.0.0.1:{port}", "--only", "cp.*",
                                   "--timeout", "2"], env={"COLUMNS": "200"})
    assert res.exit_code == 1
    assert "requests got no answer at all" in res.stdout
    assert "ConnectError" in res.stdout


def test_docs_state_what_the_reference_fails_by_check_id() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "CONFORMANCE.md").read_text(encoding="utf-8")
    section = doc.split("## What the AMP reference services fail", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")}
    assert listed == REFERENCE_FAILS
    assert "29 PASS and 11 FAIL" in section
