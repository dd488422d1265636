"""Signing an owner decision, and checking a signature against the decision about to be acted on.

A signature is a compact JWS (ES256) whose protected header is ``{"alg":"ES256","kid":<thumbprint>,
"typ":<payload typ>}`` and whose payload is the canonical payload bytes (see `payloads`).
`verify` takes the pinned public key, the stored JWS and the payload the verifier rebuilt from the
rows (never the payload inside the token) and accepts only when the signature is valid under the
pinned key, ``alg`` is ES256, and the signed bytes equal the rebuilt ones exactly.
"""

from __future__ import annotations

import json
from typing import Any

from jwcrypto import jws
from jwcrypto.common import JWException

from amp_tools.errors import ToolError

from .keys import OwnerKey, OwnerPublicKey
from .payloads import canonical

__all__ = ["OwnerSignatureInvalid", "UnsignedAuthority", "sign", "verify"]

_MAX_JWS = 4096


class OwnerSignatureInvalid(ToolError):
    """A decision carries a signature that is not the pinned owner's over exactly this decision."""

    code = "OWNER_SIGNATURE_INVALID"


class UnsignedAuthority(ToolError):
    """A decision the agent must act on is not signed, and an owner key is pinned."""

    code = "OWNER_SIGNATURE_MISSING"


def sign(key: OwnerKey, payload: dict[str, Any]) -> str:
    """A compact ES256 JWS over the canonical payload."""
    header = json.dumps({"alg": "ES256", "kid": key.kid, "typ": str(payload["typ"])}, sort_keys=True,
                        separators=(",", ":"))
    token = jws.JWS(payload=canonical(payload))
    token.add_signature(key.signing_key, alg="ES256", protected=header)
    return str(token.serialize(compact=True))


def verify(key: OwnerPublicKey, token: str | None, payload: dict[str, Any], *, what: str, fix: str) -> None:
    """Raise unless `token` is the pinned owner's signature over exactly `payload`.

    `what` names the decision in the error ("policy version 3 of budget 'team'"); `fix` is the owner
    command that produces a valid signature, given to the reader as the hint.
    """
    if not token:
        raise UnsignedAuthority(f"{what} is not signed by the budget's owner, and this agent only acts on the "
                                f"owner's signed decisions (owner key {key.kid})",
                                hint=f"Ask the owner to run `{fix}` with the owner key.")
    problem = _problem(key, token, canonical(payload))
    if problem:
        raise OwnerSignatureInvalid(f"{what} has an owner signature that does not hold ({problem}); it is "
                                    "ignored and nothing is paid on it",
                                    hint=f"Ask the owner to run `{fix}` with the owner key (kid {key.kid}).")


def _problem(key: OwnerPublicKey, token: str, want: bytes) -> str:
    if not isinstance(token, str) or len(token) > _MAX_JWS or token.count(".") != 2:
        return "not a compact JWS"
    try:
        parsed = jws.JWS()
        parsed.deserialize(token)
        header = parsed.jose_header
        if not isinstance(header, dict) or header.get("alg") != "ES256":
            return "not signed with ES256"
        parsed.verify(key.verification_key, alg="ES256")
    except (JWException, ValueError, TypeError):
        return "signature invalid under the pinned owner key"
    if parsed.payload != want:
        return "signed for different fields than these"
    return ""
