"""Owner signatures: one decision's signature never validates another (swapped fields, replays)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from amp_tools.errors import InvalidArguments
from amp_tools.money import Money
from amp_tools.owner import OwnerKey, OwnerSignatureInvalid, UnsignedAuthority, sign, verify
from amp_tools.owner.payloads import approval_payload, control_payload, policy_payload

KEY = OwnerKey.generate()
PUB = KEY.public()
EXP = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _approval(**over: object) -> dict[str, object]:
    fields: dict[str, object] = dict(approval_id="apr_1", budget_id="alice", level="alice", checkout_id="co_1",
                                     amount=Money(12345, "USD"), merchant_id="m_hotel", decision="approve",
                                     expires_at=EXP)
    fields.update(over)
    return approval_payload(**fields)  # type: ignore[arg-type]


def enc(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _ok(token: str, payload: dict[str, object]) -> None:
    verify(PUB, token, payload, what="test", fix="amp-tools approvals approve")


def test_a_signed_approval_verifies_against_its_own_fields() -> None:
    token = sign(KEY, _approval())
    _ok(token, _approval())
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "kid": KEY.kid, "typ": "amp-tools/owner-approval-decision/v1"}


@pytest.mark.parametrize("change", [
    {"budget_id": "bob"}, {"level": "alice/hotel"}, {"checkout_id": "co_2"}, {"amount": Money(12346, "USD")},
    {"amount": Money(12345, "EUR")}, {"merchant_id": "m_other"}, {"decision": "deny"},
    {"approval_id": "apr_2"}, {"expires_at": EXP + timedelta(microseconds=1)},
])
def test_an_approval_signature_replayed_on_other_fields_is_refused(change: dict[str, object]) -> None:
    token = sign(KEY, _approval())
    with pytest.raises(OwnerSignatureInvalid, match="signed for different fields"):
        _ok(token, _approval(**change))


def test_signatures_never_cross_decision_types() -> None:
    policy = policy_payload("alice", 3, "h" * 64)
    control = control_payload(budget_id="alice", frozen=False, reason="", at=EXP)
    with pytest.raises(OwnerSignatureInvalid):
        _ok(sign(KEY, policy), control)
    with pytest.raises(OwnerSignatureInvalid):
        _ok(sign(KEY, control), policy)
    # a freeze's signature does not pass for the unfreeze at the same moment
    freeze = control_payload(budget_id="alice", frozen=True, reason="", at=EXP)
    with pytest.raises(OwnerSignatureInvalid):
        _ok(sign(KEY, freeze), control)
    # a policy signature for version 3 is not one for version 4, another hash, or another budget
    token = sign(KEY, policy)
    _ok(token, policy)
    for other in (policy_payload("alice", 4, "h" * 64), policy_payload("alice", 3, "g" * 64),
                  policy_payload("bob", 3, "h" * 64)):
        with pytest.raises(OwnerSignatureInvalid):
            _ok(token, other)


def test_another_key_unsigned_garbage_and_alg_none_are_refused() -> None:
    payload = _approval()
    with pytest.raises(OwnerSignatureInvalid, match="pinned owner key"):
        _ok(sign(OwnerKey.generate(), payload), payload)
    with pytest.raises(UnsignedAuthority, match="not signed") as info:
        _ok("", payload)
    assert info.value.code == "OWNER_SIGNATURE_MISSING"
    assert "amp-tools approvals approve" in info.value.hint
    for junk in ("abc", "a.b.c", "x" * 5000):
        with pytest.raises(OwnerSignatureInvalid):
            _ok(junk, payload)
    # alg none with the right payload
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    none_header = enc(b'{"alg":"none"}')
    with pytest.raises(OwnerSignatureInvalid, match="ES256"):
        _ok(f"{none_header}.{enc(body)}.", payload)
    # a valid signature whose payload was re-encoded (same fields, different bytes) is refused too
    token = sign(KEY, payload)
    head, _body, sig = token.split(".")
    with pytest.raises(OwnerSignatureInvalid):
        _ok(f"{head}.{enc(json.dumps(payload).encode())}.{sig}", payload)


def test_payloads_refuse_floats_naive_times_and_unknown_decisions() -> None:
    with pytest.raises(InvalidArguments):
        _approval(decision="maybe")
    with pytest.raises(InvalidArguments):
        _approval(amount=123.45)
    with pytest.raises(InvalidArguments):
        _approval(expires_at=datetime(2026, 1, 1))
    with pytest.raises(InvalidArguments):
        policy_payload("a", 0, "h")


def test_usage_days_follow_the_policy_windows_and_velocity() -> None:
    from amp_tools.owner.enforce import usage_days
    from amp_tools.policy import BudgetPolicy

    def days(**extra: object) -> int:
        return usage_days(BudgetPolicy.model_validate({"name": "p", "currency": "USD", "total_budget": "9.00",
                                                       **extra}))

    assert days() == 1
    assert days(windows={"day": {"limit": "1.00"}}) == 2
    assert days(windows={"hour": {"limit": "1.00"}, "week": {"limit": "5.00"}}) == 8
    assert days(windows={"month": {"limit": "9.00"}}) == 32
    assert days(velocity={"max_payments": 3, "per": "3d"}) == 4
