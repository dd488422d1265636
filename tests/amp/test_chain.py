"""The SD-JWT mandate chain: exact layouts, round trips, and every tamper case we refuse."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amp_tools.amp import chain as c
from amp_tools.amp.chain import ChainError, NonceCache, verify_chain
from amp_tools.amp.keys import AgentKey
from amp_tools.money import Money

NOW = datetime(2026, 11, 22, 14, 53, 23, tzinfo=UTC)

EXPIRY = NOW + timedelta(days=7)
CHECKOUT = c.chain_checkout(Money(12999, "USD"), merchant_id="MERCHANT-DEMO-001", merchant_name="UGG Demo Store",
                            merchant_mcc="5411", checkout_id="CKO-22D33C74")
CP_CHECKOUT: dict[str, Any] = {"totalAmount": {"cent": 12999, "currency": "USD"},
               "merchant": {"merchantId": "MERCHANT-DEMO-001", "merchantName": "UGG Demo Store", "merchantMcc": "5411"}}
TOKEN_INFO = {"token_unique_reference": "d65d115d", "token_status": "ACTIVE", "user_login_id": "user-demo",
              "wallet_name": "AlipayHK"}


def b64json(seg: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def b64enc(obj: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def make_l1(aplus: AgentKey, isp: AgentKey) -> str:
    return c.build_l1(aplus, sub="user-mock-001", isp_public_jwk=isp.public_jwk(), now=NOW)


def make_auto_l2(isp: AgentKey, l1: str, agent: AgentKey, *, exp: Any = EXPIRY) -> str:
    intent = {"raw": "Buy travel gear, up to USD 300, valid 7 days", "desc": "User authorized payment",
              "expiry_time": "2026-11-29T14:53:23Z",
              "constraints": {"budget_amount": {"currency": "USD", "amount": 30000},
                              "merchant_name_list": ["UGG Demo Store"], "merchant_mcc_list": ["5411"]}}
    mandate = {"mandate_id": "mandate-e7d7ce2d", "mandate_type": "AUTONOMOUS", "mandate_status": "ACTIVE",
               "mandate_expiry_time": "2026-11-29T14:53:23Z"}
    return c.build_l2(isp, l1=l1, mode="AUTONOMOUS", intent=intent, token_info=TOKEN_INFO, mandate_info=mandate,
                      agent_public_jwk=agent.public_jwk(), idv_time=NOW, now=NOW, exp=exp)


def make_imm_l2(isp: AgentKey, l1: str) -> str:
    mandate = {"mandate_id": "mandate-1a2b3c4d", "mandate_type": "IMMEDIATE", "mandate_status": "ACTIVE",
               "mandate_expiry_time": "2027-05-24T14:53:23Z"}
    checkout = c.chain_checkout(Money(4500, "USD"), merchant_id="MERCHANT-DEMO-001", merchant_name="UGG Demo Store",
                                merchant_mcc="5411")
    return c.build_l2(isp, l1=l1, mode="IMMEDIATE", intent={"raw": "Buy the Bali trek", "desc": "User authorized"},
                      token_info=TOKEN_INFO, mandate_info=mandate, checkout=checkout, idv_time=NOW, now=NOW,
                      exp=NOW + timedelta(seconds=600))


@pytest.fixture()
def auto(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey) -> tuple[str, str, str]:
    l1 = make_l1(aplus_key, isp_key)
    l2 = make_auto_l2(isp_key, l1, agent_key)
    l3 = c.build_l3(l2, CHECKOUT, agent_key, now=NOW)
    return l1, l2, l3


def verify(aplus: AgentKey, l1: str, l2: str, l3: str | None = None, **kw: Any) -> c.ChainResult:
    kw.setdefault("now", NOW)
    return verify_chain(l1, l2, l3, aplus_public_jwk=aplus.public_jwk(), **kw)


# ----------------------------------------------------------------------------- layout
def test_sd_hash_covers_the_whole_serialization() -> None:
    # SHA-256("abc~") base64url without padding, computed independently.
    import hashlib
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"abc~").digest()).rstrip(b"=").decode()
    assert c.sd_hash("abc~") == expected
    assert c.sd_hash("abc") != c.sd_hash("abc~")
    assert "=" not in expected


def test_disclosure_shape_and_digest() -> None:
    b64, digest = c.disclosure("checkout", {"a": 1}, salt="salt123")
    assert b64json(b64) == ["salt123", "checkout", {"a": 1}]
    assert base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)) == b'["salt123", "checkout", {"a": 1}]'
    assert digest == c.sd_hash(b64)


def test_l1_layout(aplus_key: AgentKey, isp_key: AgentKey) -> None:
    l1 = make_l1(aplus_key, isp_key)
    assert l1.endswith("~") and l1.count("~") == 1
    head, body, _ = l1[:-1].split(".")
    assert base64.urlsafe_b64decode(head + "==") == b'{"alg":"ES256","typ":"sd+jwt","kid":"aplus-key-1"}'
    payload = b64json(body)
    assert list(payload) == ["iss", "sub", "iat", "exp", "cnf", "isp_type", "isp_name"]
    assert payload["exp"] - payload["iat"] == 365 * 24 * 3600
    assert payload["cnf"]["jwk"] == isp_key.public_jwk()
    assert "_sd" not in payload and "_sd_alg" not in payload
    assert len(l1) == 528  # the reference's L1 length with the same kids and claims


def test_autonomous_l2_layout(auto: tuple[str, str, str], agent_key: AgentKey) -> None:
    l1, l2, _ = auto
    assert l2.endswith("~") and l2.count("~") == 4
    jwt, *discs, tail = l2.split("~")
    assert tail == "" and len(discs) == 3
    head = base64.urlsafe_b64decode(jwt.split(".")[0] + "==")
    assert head == b'{"alg": "ES256", "typ": "sd+jwt", "kid": "mpp-key-1"}'
    payload = b64json(jwt.split(".")[1])
    assert list(payload) == ["_sd", "nonce", "aud", "iat", "exp", "sd_hash", "idv_result", "idv_time", "mode", "cnf",
                             "_sd_alg"]
    assert len(payload["nonce"]) == 22 and payload["sd_hash"] == c.sd_hash(l1)
    assert payload["exp"] - payload["iat"] == 7 * 24 * 3600
    assert payload["cnf"] == {"jwk": agent_key.public_jwk()}
    assert payload["_sd"] == sorted(c.sd_hash(d) for d in discs)
    assert [b64json(d)[1] for d in discs] == ["intent", "token_info", "mandate_info"]


def test_immediate_l2_layout(aplus_key: AgentKey, isp_key: AgentKey) -> None:
    l2 = make_imm_l2(isp_key, make_l1(aplus_key, isp_key))
    assert l2.count("~") == 5
    jwt, *discs, _ = l2.split("~")
    payload = b64json(jwt.split(".")[1])
    assert "cnf" not in payload and payload["mode"] == "IMMEDIATE" and payload["exp"] - payload["iat"] == 600
    names = [b64json(d)[1] for d in discs]
    assert names == ["intent", "token_info", "mandate_info", "checkout"]
    assert b64json(discs[3])[2]["total_amount"] == {"currency": "USD", "amount": 4500}


def test_l3_layout(auto: tuple[str, str, str]) -> None:
    _, l2, l3 = auto
    assert l3.endswith("~") and l3.count("~") == 2
    jwt, disc, _ = l3.split("~")
    assert base64.urlsafe_b64decode(jwt.split(".")[0] + "==") == \
        b'{"alg": "ES256", "typ": "sd+jwt", "kid": "agent-key-1"}'
    payload = b64json(jwt.split(".")[1])
    assert list(payload) == ["_sd", "nonce", "aud", "iat", "exp", "sd_hash", "_sd_alg"]
    assert payload["sd_hash"] == c.sd_hash(l2) and payload["exp"] - payload["iat"] == 600
    _, name, value = b64json(disc)
    assert name == "checkout"
    assert value["total_amount"] == {"currency": "USD", "amount": 12999}
    assert isinstance(value["total_amount"]["amount"], int)
    assert len(l3) == 815


# ----------------------------------------------------------------------------- round trips
def test_autonomous_round_trip(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    res = verify(aplus_key, l1, l2, l3, request_checkout=CP_CHECKOUT, nonce_cache=NonceCache())
    assert res.mode == "AUTONOMOUS"
    assert res.l1_payload["sub"] == "user-mock-001"
    assert res.l2_disclosures["intent"]["constraints"]["budget_amount"] == {"currency": "USD", "amount": 30000}
    assert res.l3_disclosures["checkout"]["merchant"]["reference_merchant_id"] == "MERCHANT-DEMO-001"
    assert c.normalize_checkout(res.checkout) == (Money(12999, "USD"), "MERCHANT-DEMO-001", "UGG Demo Store", "5411")
    assert res.l3_payload is not None and res.l3_payload["aud"] == "alipayplus.com"


def test_immediate_round_trip(aplus_key: AgentKey, isp_key: AgentKey) -> None:
    l1 = make_l1(aplus_key, isp_key)
    l2 = make_imm_l2(isp_key, l1)
    req = {**CP_CHECKOUT, "totalAmount": {"cent": 4500, "currency": "USD"}}
    res = verify(aplus_key, l1, l2, request_checkout=req)
    assert res.mode == "IMMEDIATE" and res.l3_payload is None
    assert res.l2_disclosures["checkout"]["total_amount"]["amount"] == 4500
    with pytest.raises(ChainError, match="differs from the request checkout") as exc:
        verify(aplus_key, l1, l2, request_checkout=CP_CHECKOUT)
    assert exc.value.check == "checkout_mismatch"


def test_two_l3s_under_one_l2_have_fresh_nonces(aplus_key: AgentKey, auto: tuple[str, str, str],
                                                agent_key: AgentKey) -> None:
    l1, l2, l3 = auto
    second = c.build_l3(l2, CHECKOUT, agent_key, now=NOW)
    cache = NonceCache()
    a = verify(aplus_key, l1, l2, l3, nonce_cache=cache)
    b = verify(aplus_key, l1, l2, second, nonce_cache=cache)
    assert a.l3_payload and b.l3_payload and a.l3_payload["nonce"] != b.l3_payload["nonce"]
    assert len(cache) == 2


def test_both_money_spellings_in_disclosures() -> None:
    assert c.chain_money({"currency": "USD", "amount": 50000}) == Money(50000, "USD")
    assert c.chain_money({"value": "50000", "currency": "USD"}) == Money(50000, "USD")
    with pytest.raises(Exception, match="integer"):
        c.chain_money({"currency": "USD", "amount": 129.99})


# ----------------------------------------------------------------------------- tampering
def _swap_disclosure(serialized: str, index: int, new_value: Any) -> str:
    parts = serialized.split("~")
    salt, name, _ = b64json(parts[index])
    parts[index] = b64enc([salt, name, new_value])
    return "~".join(parts)


def _resign(key: AgentKey, serialized: str, *, header: dict[str, Any] | None = None,
            payload: dict[str, Any] | None = None) -> str:
    """Re-sign a layer with `key` after editing its header/payload (a forger's view)."""
    jwt, *rest = serialized.split("~")
    h, p, _ = jwt.split(".")
    hdr = {**b64json(h), **(header or {})}
    pl = {**b64json(p), **(payload or {})}
    new = key.sign_compact(json.dumps(hdr), json.dumps(pl))
    return "~".join([new, *rest])


def test_modified_l2_disclosure(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, _ = auto
    tampered = _swap_disclosure(l2, 1, {"raw": "x", "desc": "y", "expiry_time": "2030-01-01T00:00:00Z",
                                        "constraints": {"budget_amount": {"currency": "USD", "amount": 10**9}}})
    with pytest.raises(ChainError, match="not bound to signed _sd whitelist") as exc:
        verify(aplus_key, l1, tampered)
    assert exc.value.code == "CHAIN_INVALID" and exc.value.check == "disclosure"


def test_modified_l3_disclosure_amount(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    tampered = _swap_disclosure(l3, 1, {**CHECKOUT, "total_amount": {"currency": "USD", "amount": 1}})
    with pytest.raises(ChainError, match="not bound"):
        verify(aplus_key, l1, l2, tampered)


def test_l3_signed_with_another_key(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    forged = _resign(AgentKey.generate("agent-key-1"), l3)  # same kid, wrong key
    with pytest.raises(ChainError, match="L3 signature verification failed") as exc:
        verify(aplus_key, l1, l2, forged)
    assert exc.value.check == "signature"


def test_l3_sd_hash_pointing_at_another_l2(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey,
                                           auto: tuple[str, str, str]) -> None:
    l1, l2, _ = auto
    other_l2 = make_auto_l2(isp_key, l1, agent_key)
    l3_other = c.build_l3(other_l2, CHECKOUT, agent_key, now=NOW)
    with pytest.raises(ChainError, match="L3 sd_hash does not match the hash of L2") as exc:
        verify(aplus_key, l1, l2, l3_other)
    assert exc.value.check == "sd_hash"


def test_l2_bound_to_another_l1(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey) -> None:
    l1a, l1b = make_l1(aplus_key, isp_key), make_l1(aplus_key, isp_key)
    l2 = make_auto_l2(isp_key, l1b, agent_key)
    with pytest.raises(ChainError, match="L2 sd_hash does not match the hash of L1"):
        verify(aplus_key, l1a, l2, c.build_l3(l2, CHECKOUT, agent_key, now=NOW))


def test_wrong_aud(aplus_key: AgentKey, auto: tuple[str, str, str], agent_key: AgentKey) -> None:
    l1, l2, _ = auto
    l3 = c.build_l3(l2, CHECKOUT, agent_key, aud="example.com", now=NOW)
    with pytest.raises(ChainError) as exc:
        verify(aplus_key, l1, l2, l3)
    assert exc.value.reason == ("L3 standard claims verification failed: audience mismatch "
                                "(expected 'alipayplus.com', got 'example.com')")


def test_expired_l3(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    exp = int(NOW.timestamp()) + 600
    verify(aplus_key, l1, l2, l3, now=NOW + timedelta(seconds=660))  # inside the 60 s leeway
    with pytest.raises(ChainError, match=rf"token expired \(exp={exp}, now={exp + 61}\)") as exc:
        verify(aplus_key, l1, l2, l3, now=NOW + timedelta(seconds=661))
    assert exc.value.check == "expired" and exc.value.layer == "L3"


def test_expired_l1_and_future_iat(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey) -> None:
    l1 = c.build_l1(aplus_key, sub="u", isp_public_jwk=isp_key.public_jwk(), now=NOW - timedelta(days=400))
    l2 = make_auto_l2(isp_key, l1, agent_key)
    with pytest.raises(ChainError, match="L1 standard claims verification failed: token expired"):
        verify(aplus_key, l1, l2, c.build_l3(l2, CHECKOUT, agent_key, now=NOW))
    future = c.build_l1(aplus_key, sub="u", isp_public_jwk=isp_key.public_jwk(), now=NOW + timedelta(seconds=120))
    with pytest.raises(ChainError, match="in the future"):
        verify(aplus_key, future, make_auto_l2(isp_key, future, agent_key))


def test_replayed_l3_nonce(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    cache = NonceCache()
    verify(aplus_key, l1, l2, l3, nonce_cache=cache)
    with pytest.raises(ChainError, match="replay") as exc:
        verify(aplus_key, l1, l2, l3, nonce_cache=cache)
    assert exc.value.check == "replay"
    # A fresh verifier (its own cache) accepts it: the merchant re-verifies what the CP saw.
    assert verify(aplus_key, l1, l2, l3, nonce_cache=NonceCache()).mode == "AUTONOMOUS"


def test_l3_kid_mismatch(aplus_key: AgentKey, auto: tuple[str, str, str], agent_key: AgentKey) -> None:
    l1, l2, l3 = auto
    wrong_kid = _resign(agent_key, l3, header={"kid": "someone-else"})  # valid signature, wrong kid
    with pytest.raises(ChainError, match="L3 header kid 'someone-else' does not match") as exc:
        verify(aplus_key, l1, l2, wrong_kid)
    assert exc.value.check == "kid"


def test_l2_kid_mismatch(aplus_key: AgentKey, auto: tuple[str, str, str], isp_key: AgentKey) -> None:
    l1, l2, _ = auto
    with pytest.raises(ChainError, match="L2 header kid 'mpp-key-2'"):
        verify(aplus_key, l1, _resign(isp_key, l2, header={"kid": "mpp-key-2"}))


@pytest.mark.parametrize("layer", ["L1", "L2", "L3"])
def test_typ_wrong(layer: str, aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey,
                   auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    if layer == "L1":
        l1 = _resign(aplus_key, l1, header={"typ": "JWT"})
    elif layer == "L2":
        l2 = _resign(isp_key, l2, header={"typ": "JWT"})
    else:
        l3 = _resign(agent_key, l3, header={"typ": "JWT"})
    with pytest.raises(ChainError, match=f"{layer} header typ is 'JWT'") as exc:
        verify(aplus_key, l1, l2, l3)
    assert exc.value.check == "typ"


def test_immediate_l2_with_cnf(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey) -> None:
    l1 = make_l1(aplus_key, isp_key)
    l2 = _resign(isp_key, make_imm_l2(isp_key, l1), payload={"cnf": {"jwk": agent_key.public_jwk()}})
    with pytest.raises(ChainError, match="IMMEDIATE L2 must not carry cnf") as exc:
        verify(aplus_key, l1, l2)
    assert exc.value.check == "mode"
    with pytest.raises(ValueError, match="must not carry cnf"):
        c.build_l2(isp_key, l1=l1, mode="IMMEDIATE", intent={"raw": "x", "desc": ""}, token_info={},
                   mandate_info={}, checkout=CHECKOUT, agent_public_jwk=agent_key.public_jwk(), idv_time=NOW,
                   now=NOW, exp=NOW + timedelta(seconds=600))


def test_autonomous_l2_without_cnf_or_constraints(aplus_key: AgentKey, auto: tuple[str, str, str],
                                                  isp_key: AgentKey) -> None:
    l1, l2, _ = auto
    jwt, *rest = l2.split("~")
    payload = b64json(jwt.split(".")[1])
    del payload["cnf"]
    no_cnf = "~".join([isp_key.sign_compact(json.dumps(b64json(jwt.split(".")[0])), json.dumps(payload)), *rest])
    with pytest.raises(ChainError, match="AUTONOMOUS L2 must carry cnf"):
        verify(aplus_key, l1, no_cnf)


def test_autonomous_without_l3(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, _ = auto
    with pytest.raises(ChainError, match="without L3") as exc:
        verify(aplus_key, l1, l2)
    assert exc.value.check == "missing_l3"
    assert verify(aplus_key, l1, l2, require_l3_for_autonomous=False).l3_payload is None


def test_l3_checkout_differs_from_request(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    for change in ({"totalAmount": {"cent": 12998, "currency": "USD"}},
                   {"totalAmount": {"cent": 12999, "currency": "SGD"}},
                   {"merchant": {**CP_CHECKOUT["merchant"], "merchantName": "Other Store"}},
                   {"merchant": {**CP_CHECKOUT["merchant"], "merchantMcc": "5999"}}):
        with pytest.raises(ChainError, match="differs from the request checkout") as exc:
            verify(aplus_key, l1, l2, l3, request_checkout={**CP_CHECKOUT, **change})
        assert exc.value.check == "checkout_mismatch"
    # The snake_case chain shape compares equal too.
    assert verify(aplus_key, l1, l2, l3, request_checkout=CHECKOUT).mode == "AUTONOMOUS"


def test_l1_with_sd_claims_or_wrong_pinned_key(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    with pytest.raises(ChainError, match="L1 must not carry _sd"):
        verify(aplus_key, _resign(aplus_key, l1, payload={"_sd": []}), l2, l3)
    impostor = AgentKey.generate("aplus-key-1")
    with pytest.raises(ChainError, match="L1 signature verification failed"):
        verify(impostor, l1, l2, l3)
    with pytest.raises(ChainError, match="issuer mismatch"):
        verify(aplus_key, l1, l2, l3, expected_iss="https://www.alipayplus.com")


def test_malformed_serializations(aplus_key: AgentKey, auto: tuple[str, str, str]) -> None:
    l1, l2, l3 = auto
    cases = [(l1[:-1], "must end with '~'"), ("not.a.jwt~", "base64url"), ("~", "3 '.'"),
             (l1 + "extra~", "no disclosures")]
    for bad, msg in cases:
        with pytest.raises(ChainError, match=msg):
            verify(aplus_key, bad, l2, l3)
    with pytest.raises(ChainError, match="presented twice"):
        verify(aplus_key, l1, l2[:-1] + "~" + l2.split("~")[1] + "~", l3)
    with pytest.raises(ChainError, match="not base64url JSON"):
        verify(aplus_key, l1, l2 + "!!!~", l3)


def test_build_l3_refusals(auto: tuple[str, str, str], aplus_key: AgentKey, isp_key: AgentKey,
                           agent_key: AgentKey) -> None:
    _, l2, _ = auto
    with pytest.raises(ValueError, match=r"not the key bound in L2 cnf\.jwk"):
        c.build_l3(l2, CHECKOUT, AgentKey.generate("agent-key-1"), now=NOW)
    imm = make_imm_l2(isp_key, make_l1(aplus_key, isp_key))
    with pytest.raises(ValueError, match="only AUTONOMOUS"):
        c.build_l3(imm, CHECKOUT, agent_key, now=NOW)
    with pytest.raises(ValueError, match="ttl"):
        c.build_l3(l2, CHECKOUT, agent_key, now=NOW, ttl=601)
    float_dollars = {**CHECKOUT, "total_amount": {"currency": "USD", "amount": 129.99}}
    with pytest.raises(Exception, match="integer count of minor units"):
        c.build_l3(l2, float_dollars, agent_key, now=NOW)
    with pytest.raises(ValueError, match="positive"):
        c.build_l3(l2, {**CHECKOUT, "total_amount": {"currency": "USD", "amount": 0}}, agent_key, now=NOW)
    with pytest.raises(ValueError, match="unexpected key 'totalAmount'"):
        c.build_l3(l2, {**CHECKOUT, "totalAmount": {"cent": 1, "currency": "USD"}}, agent_key, now=NOW)


def test_build_l2_refuses_mode_violations(aplus_key: AgentKey, isp_key: AgentKey, agent_key: AgentKey) -> None:
    l1 = make_l1(aplus_key, isp_key)
    with pytest.raises(ValueError, match="needs agent_public_jwk"):
        c.build_l2(isp_key, l1=l1, mode="AUTONOMOUS", intent={"raw": "x", "desc": "", "expiry_time": "z",
                                                             "constraints": {}},
                   token_info={}, mandate_info={}, idv_time=NOW, now=NOW, exp=EXPIRY)
    with pytest.raises(ValueError, match="expiry_time and constraints"):
        c.build_l2(isp_key, l1=l1, mode="AUTONOMOUS", intent={"raw": "x", "desc": ""}, token_info={},
                   mandate_info={}, agent_public_jwk=agent_key.public_jwk(), idv_time=NOW, now=NOW, exp=EXPIRY)
    with pytest.raises(ValueError, match="must be after iat"):
        make_auto_l2(isp_key, l1, agent_key, exp=NOW)
