"""Model-written text sent to the network (`request_mandate.purpose`, `refund.reason`) is cleaned like
merchant text: no control, bidi or zero-width characters, one line, bounded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from amp_tools.toolkit._paying import RefundArgs, RequestMandateArgs


def test_purpose_and_reason_are_cleaned_before_they_leave() -> None:
    mandate = RequestMandateArgs(purpose="Book\u202e my\x1b[2J trip\nto Kuala\u200b Lumpur\x00")
    assert mandate.purpose == "Book my[2J trip to Kuala Lumpur"
    refund = RefundArgs(checkout_id="chk_1", reason="wrong\x07 size\r\n\u2066please\u2069")
    assert refund.reason == "wrong size please"
    assert RefundArgs(checkout_id="chk_1").reason == ""


def test_text_of_nothing_but_control_characters_is_refused() -> None:
    with pytest.raises(ValidationError, match="readable text"):
        RequestMandateArgs(purpose="\x00\x01\u202e\u200b")
    with pytest.raises(ValidationError, match="readable text"):
        RefundArgs(checkout_id="chk_1", reason="\x1b\x07")
