"""An independent reading of the chain a target returns, and the L3s the checker signs.

The checker does not trust the target's verdicts: it decodes L1 and L2 itself (header, claims,
``sd_hash``, disclosures, signature) with the primitives of `amp_tools.amp.chain`, and it signs
L3s, correct ones and deliberately wrong ones (another kid, another key, another ``sd_hash``,
an old ``exp``, another ``aud``), with the agent key the target bound in L2 ``cnf``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from typing import Any

from jwcrypto import jws

from amp_tools.amp.chain import ChainError, ParsedSdJwt, disclosure, parse_sd_jwt, sd_hash
from amp_tools.amp.keys import AgentKey, public_key_from_jwk
from amp_tools.errors import ConfigError

__all__ = ["cnf_jwk", "disclosed", "make_l3", "read", "signature_problem"]


def read(serialized: Any, layer: str) -> tuple[ParsedSdJwt | None, str | None]:
    """(parsed, None) or (None, why it is not an SD-JWT)."""
    try:
        return parse_sd_jwt(serialized, layer), None
    except ChainError as exc:
        return None, exc.reason


def signature_problem(p: ParsedSdJwt, key_jwk: Any) -> str | None:
    """None when `p` verifies under `key_jwk` with ES256, else why not."""
    try:
        key = public_key_from_jwk(key_jwk)
    except ConfigError as exc:
        return f"{p.layer} verification key is unusable: {exc.message}"
    token = jws.JWS()
    try:
        token.deserialize(p.jwt)
        token.verify(key, alg="ES256")
    except Exception as exc:  # jwcrypto raises several types
        return f"{p.layer} signature does not verify: {type(exc).__name__}"
    return None


def disclosed(p: ParsedSdJwt) -> tuple[dict[str, Any], list[str]]:
    """The disclosed claims by name, and problems: a disclosure not bound to ``_sd``, or undecodable."""
    sd = p.payload.get("_sd")
    allowed = set(sd) if isinstance(sd, list) else set()
    out: dict[str, Any] = {}
    problems: list[str] = []
    for b64 in p.disclosures:
        try:
            item = json.loads(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-8"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            problems.append(f"{p.layer} has a disclosure that is not base64url JSON")
            continue
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[1], str):
            problems.append(f"{p.layer} has a disclosure that is not [salt, name, value]")
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(b64.encode("ascii")).digest()).rstrip(b"=").decode()
        if digest not in allowed:
            problems.append(f"{p.layer} disclosure {item[1]!r} is not bound to the signed _sd digests")
        out[item[1]] = item[2]
    return out, problems


def cnf_jwk(p: ParsedSdJwt) -> dict[str, Any] | None:
    cnf = p.payload.get("cnf")
    jwk_ = cnf.get("jwk") if isinstance(cnf, dict) else None
    return jwk_ if isinstance(jwk_, dict) else None


def make_l3(l2: str, checkout: dict[str, Any], key: AgentKey, *, kid: str, aud: str, iat: int, ttl: int = 300,
            hash_over: str | None = None) -> str:
    """An L3 ``<jwt>~<checkout disclosure>~`` signed by `key` with header `kid`.

    `hash_over` replaces the L2 string its ``sd_hash`` covers (a deliberately unbound L3).
    The layout follows amp-protocol.md 3.4: ``{_sd, nonce, aud, iat, exp, sd_hash, _sd_alg}``.
    """
    b64, digest = disclosure("checkout", checkout)
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
    payload = {"_sd": [digest], "nonce": nonce, "aud": aud, "iat": iat, "exp": iat + ttl,
               "sd_hash": sd_hash(hash_over if hash_over is not None else l2), "_sd_alg": "sha-256"}
    header = json.dumps({"alg": "ES256", "typ": "sd+jwt", "kid": kid})
    return f"{key.sign_compact(header, json.dumps(payload))}~{b64}~"
