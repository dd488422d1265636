"""The AMP mandate chain: SD-JWT L1 -> L2 -> L3, built and verified.

Issuer side (`build_l1`, `build_l2`) is what the sandbox's Alipay+ and wallet use; the agent
side is `build_l3`. `verify_chain` is the verifier the network, the CP and merchants run.
Shapes follow amp-protocol.md 3.3-3.5 and amp-reference-wire.md 3.9 byte for byte (compact
JSON in L1, the `sd-jwt` library's spaced JSON in L2/L3, disclosures ``[salt, name, value]``,
a trailing ``~``). Signatures are jwcrypto ES256; this module only assembles and checks claims.

On top of the reference validator, verification also enforces the spec rules the reference
skips (amp-protocol.md 3.5 [GAP], section 9 items 10-11): ``typ``, header ``kid`` against the
previous layer's ``cnf.jwk.kid``, no ``_sd`` in L1, mode-dependent claims, L3 nonce replay,
L3 checkout == request checkout, and no AUTONOMOUS spend without L3.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from jwcrypto import jws

from amp_tools.amp.keys import AgentKey, public_jwk_equal, public_key_from_jwk
from amp_tools.clock import utc
from amp_tools.errors import AmpError, ConfigError, MoneyError
from amp_tools.money import Money

__all__ = [
    "ChainError",
    "ChainResult",
    "Mode",
    "NonceCache",
    "build_l1",
    "build_l2",
    "build_l3",
    "chain_checkout",
    "chain_money",
    "disclosure",
    "normalize_checkout",
    "parse_sd_jwt",
    "sd_hash",
    "verify_chain",
]

Mode = Literal["IMMEDIATE", "AUTONOMOUS"]
TYP = "sd+jwt"
ALG = "ES256"
SD_ALG = "sha-256"
L3_MAX_TTL = 600
_ONE_YEAR = 365 * 24 * 3600
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class ChainError(AmpError):
    """The chain failed a check. `reason` says which, `check` names it for programs.

    Messages for the checks the reference network also makes reuse its wording
    (``L3 standard claims verification failed: audience mismatch (...)``), so a service can
    prefix them with ``chain verification failed: `` and stay wire-compatible.
    """

    def __init__(self, reason: str, *, check: str = "chain", layer: str | None = None) -> None:
        super().__init__(reason, code="CHAIN_INVALID",
                         hint="the mandate chain was rejected; do not retry with the same chain",
                         retryable=False, details={"check": check, **({"layer": layer} if layer else {})})
        self.reason = reason
        self.check = check
        self.layer = layer


# --------------------------------------------------------------------------- encoding
def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not text or not set(text) <= _B64URL or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sd_hash(serialized: str) -> str:
    """base64url-nopad(SHA-256(ASCII(serialized))) over the whole previous layer, every ``~`` included."""
    try:
        raw = serialized.encode("ascii")
    except UnicodeEncodeError:
        raise ChainError("serialization is not ASCII; an SD-JWT is base64url segments joined by '~'",
                         check="format") from None
    return _b64e(hashlib.sha256(raw).digest())


def _digest(disclosure_b64: str) -> str:
    return _b64e(hashlib.sha256(disclosure_b64.encode("ascii")).digest())


def _new_nonce() -> str:
    return _b64e(secrets.token_bytes(16))


def disclosure(name: str, value: Any, salt: str | None = None) -> tuple[str, str]:
    """An object-property disclosure ``[salt, name, value]`` -> ``(b64, digest)``.

    JSON is encoded the way the `sd-jwt` library does it (default separators), so digests of
    our disclosures look exactly like the reference wallet's.
    """
    if not isinstance(name, str) or not name or name in ("_sd", "..."):
        raise ValueError(f"disclosure name {name!r} is not a claim name")
    text = json.dumps([salt if salt is not None else _new_nonce(), name, value])
    b64 = _b64e(text.encode("utf-8"))
    return b64, _digest(b64)


def _epoch(value: datetime | int) -> int:
    if isinstance(value, datetime):
        return int(utc(value).timestamp())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an aware datetime or int epoch seconds, got {value!r}")
    return value


def _iso(value: datetime | str) -> str:
    return utc(value).isoformat() if isinstance(value, datetime) else value


def _header(kid: str, *, compact: bool) -> str:
    obj = {"alg": ALG, "typ": TYP, "kid": kid}
    return json.dumps(obj, separators=(",", ":")) if compact else json.dumps(obj)


# --------------------------------------------------------------------------- money & checkout
def chain_money(data: Any, what: str = "amount") -> Money:
    """Money in a disclosure: ``{currency, amount:int minor}`` or ``{value:"<minor>", currency}``.

    Floats are refused: the reference agent's dollars-as-float bug must not verify.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("currency"), str):
        raise MoneyError(f"{what} {data!r} is not an object with a currency")
    cur = data["currency"]
    for key in ("amount", "cent"):
        raw = data.get(key)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise MoneyError(f"{what}.{key} {raw!r} must be an integer count of minor units")
        return Money(raw, cur)
    raw = data.get("value")
    if isinstance(raw, str) and raw.isdigit():
        return Money(int(raw), cur)
    raise MoneyError(f"{what} {dict(data)!r} needs amount (int minor units) or value (minor units as digits)")


def chain_checkout(amount: Money, *, merchant_id: str, merchant_name: str, merchant_mcc: str,
                   goods: list[dict[str, Any]] | None = None, checkout_id: str | None = None) -> dict[str, Any]:
    """The snake_case checkout claim of L2 (IMMEDIATE) and L3."""
    out: dict[str, Any] = {
        "total_amount": amount.to_chain(),
        "merchant": {"reference_merchant_id": merchant_id, "merchant_name": merchant_name,
                     "merchant_mcc": merchant_mcc},
    }
    if goods:
        out["goods"] = goods
    if checkout_id:
        out["reference_checkout_id"] = checkout_id
    return out


def normalize_checkout(data: Any) -> tuple[Money, str, str, str]:
    """(total, merchant id, name, mcc) from the chain shape or the CP request shape.

    Chain: ``{total_amount:{currency, amount}, merchant:{reference_merchant_id, merchant_name, merchant_mcc}}``;
    CP: ``{totalAmount:{cent, currency}, merchant:{merchantId|referenceMerchantId, merchantName, merchantMcc}}``.
    """
    if not isinstance(data, Mapping):
        raise MoneyError(f"checkout {data!r} is not an object")
    merchant = data.get("merchant")
    if not isinstance(merchant, Mapping):
        raise MoneyError("checkout has no merchant object")
    if "total_amount" in data:
        total = chain_money(data["total_amount"], "checkout.total_amount")
    elif "totalAmount" in data:
        total = Money.from_wire(data["totalAmount"])
    else:
        raise MoneyError("checkout has no total_amount/totalAmount")

    def pick(*names: str) -> str:
        for n in names:
            v = merchant.get(n)
            if v is not None:
                return str(v).strip()
        return ""

    return (total, pick("reference_merchant_id", "referenceMerchantId", "merchantId", "merchant_id"),
            pick("merchant_name", "merchantName"), pick("merchant_mcc", "merchantMcc", "merchantMCC"))


def _validate_chain_checkout(checkout: Any, what: str) -> dict[str, Any]:
    if not isinstance(checkout, dict):
        raise ValueError(f"{what} must be a dict in the snake_case chain shape")
    total = checkout.get("total_amount")
    if not isinstance(total, dict) or set(total) != {"currency", "amount"}:
        raise ValueError(f"{what}.total_amount must be {{currency, amount:<int minor units>}}, got {total!r}")
    money = chain_money(total, f"{what}.total_amount")
    if money.minor <= 0:
        raise ValueError(f"{what}.total_amount must be positive, got {money}")
    merchant = checkout.get("merchant")
    need = ("reference_merchant_id", "merchant_name", "merchant_mcc")
    if not isinstance(merchant, dict) or any(not isinstance(merchant.get(k), str) or not merchant[k] for k in need):
        raise ValueError(f"{what}.merchant must carry non-empty {', '.join(need)}")
    for key in checkout:
        if key not in ("total_amount", "merchant", "goods", "reference_checkout_id"):
            raise ValueError(f"{what} has an unexpected key {key!r} (the chain shape is snake_case: "
                             "total_amount, merchant, goods, reference_checkout_id)")
    return {**checkout, "total_amount": money.to_chain()}


# --------------------------------------------------------------------------- issuing
def _sign_sd_jwt(key: AgentKey, *, kid: str, claims: dict[str, Any],
                 disclosures: list[tuple[str, Any]], compact: bool = False) -> str:
    made = [disclosure(n, v) for n, v in disclosures]
    payload: dict[str, Any] = {}
    if made:
        payload["_sd"] = sorted(d for _, d in made)
    payload.update(claims)
    if made:
        payload["_sd_alg"] = SD_ALG
    body = json.dumps(payload, separators=(",", ":")) if compact else json.dumps(payload)
    jwt = key.sign_compact(_header(kid, compact=compact), body)
    return "~".join([jwt, *(b for b, _ in made)]) + "~"


def build_l1(aplus_key: AgentKey, *, sub: str, isp_public_jwk: dict[str, Any], isp_type: str = "MPP",
             isp_name: str = "ALIPAY_HK", iss: str = "alipayplus.com", now: datetime | int,
             ttl: int = _ONE_YEAR) -> str:
    """L1 ``<jwt>~``: Alipay+ binds the user to the ISP key (compact JSON, no disclosures)."""
    public_key_from_jwk(isp_public_jwk)
    if not isinstance(isp_public_jwk.get("kid"), str) or not isp_public_jwk["kid"]:
        raise ValueError("isp_public_jwk needs a kid: L2's header kid must match L1 cnf.jwk.kid")
    iat = _epoch(now)
    claims = {"iss": iss, "sub": sub, "iat": iat, "exp": iat + ttl,
              "cnf": {"jwk": dict(sorted(isp_public_jwk.items()))}, "isp_type": isp_type, "isp_name": isp_name}
    return _sign_sd_jwt(aplus_key, kid=aplus_key.kid, claims=claims, disclosures=[], compact=True)


def build_l2(isp_key: AgentKey, *, l1: str, mode: Mode, intent: dict[str, Any], token_info: dict[str, Any],
             mandate_info: dict[str, Any], checkout: dict[str, Any] | None = None,
             agent_public_jwk: dict[str, Any] | None = None, aud: str = "alipayplus.com",
             idv_result: str = "FACE", idv_time: datetime | str, now: datetime | int,
             exp: datetime | int) -> str:
    """L2 ``<jwt>~d~d~d~[d~]``: the wallet (ISP) signs the mandate the user confirmed.

    Mode rules (amp-protocol.md 3.3) are enforced here so the sandbox cannot issue an L2
    our own verifier would refuse.
    """
    if mode not in ("IMMEDIATE", "AUTONOMOUS"):
        raise ValueError(f"mode must be 'IMMEDIATE' or 'AUTONOMOUS', got {mode!r}")
    if not isinstance(intent, dict) or not isinstance(intent.get("raw"), str):
        raise ValueError("intent must be a dict with at least 'raw' and 'desc'")
    iat, exp_ts = _epoch(now), _epoch(exp)
    if exp_ts <= iat:
        raise ValueError(f"L2 exp {exp_ts} must be after iat {iat}")
    claims: dict[str, Any] = {"nonce": _new_nonce(), "aud": aud, "iat": iat, "exp": exp_ts, "sd_hash": sd_hash(l1),
                              "idv_result": idv_result, "idv_time": _iso(idv_time), "mode": mode}
    discs: list[tuple[str, Any]] = [("intent", intent), ("token_info", token_info), ("mandate_info", mandate_info)]
    if mode == "IMMEDIATE":
        if agent_public_jwk is not None:
            raise ValueError("an IMMEDIATE L2 must not carry cnf (agent_public_jwk)")
        if "expiry_time" in intent or "constraints" in intent:
            raise ValueError("an IMMEDIATE intent must not carry expiry_time or constraints")
        if checkout is None:
            raise ValueError("an IMMEDIATE L2 needs the checkout the user confirmed")
        discs.append(("checkout", _validate_chain_checkout(checkout, "checkout")))
    else:
        if checkout is not None:
            raise ValueError("an AUTONOMOUS L2 must not carry a checkout")
        if agent_public_jwk is None:
            raise ValueError("an AUTONOMOUS L2 needs agent_public_jwk for cnf")
        public_key_from_jwk(agent_public_jwk)
        if not isinstance(agent_public_jwk.get("kid"), str) or not agent_public_jwk["kid"]:
            raise ValueError("agent_public_jwk needs a kid: L3's header kid must match L2 cnf.jwk.kid")
        if not intent.get("expiry_time") or not isinstance(intent.get("constraints"), dict):
            raise ValueError("an AUTONOMOUS intent needs expiry_time and constraints")
        claims["cnf"] = {"jwk": dict(sorted(agent_public_jwk.items()))}
    return _sign_sd_jwt(isp_key, kid=isp_key.kid, claims=claims, disclosures=discs)


def bound_agent_jwk(l2: str) -> dict[str, Any] | None:
    """The agent public key an AUTONOMOUS L2 binds in ``cnf.jwk`` (None: unreadable, or none bound)."""
    try:
        payload = parse_sd_jwt(l2, "L2").payload
    except ChainError:
        return None
    cnf = payload.get("cnf")
    jwk_ = cnf.get("jwk") if isinstance(cnf, dict) else None
    return jwk_ if isinstance(jwk_, dict) else None


def build_l3(l2: str, checkout: dict[str, Any], agent_key: AgentKey, *, aud: str = "alipayplus.com",
             now: datetime | int, ttl: int = L3_MAX_TTL) -> str:
    """L3 ``<jwt>~d~``: the agent signs the checkout it is about to pay, bound to the exact L2.

    Refuses an IMMEDIATE L2 (no cnf, so no agent may sign under it) and an agent key that
    differs from L2's ``cnf.jwk`` (the wallet would reject the signature).
    """
    if not isinstance(ttl, int) or not 0 < ttl <= L3_MAX_TTL:
        raise ValueError(f"L3 ttl must be 1..{L3_MAX_TTL} seconds, got {ttl!r}")
    try:
        parsed = parse_sd_jwt(l2, "L2")
    except ChainError as exc:
        raise ValueError(f"cannot build L3: {exc.reason}") from None
    payload = parsed.payload
    if payload.get("mode") != "AUTONOMOUS":
        raise ValueError(f"cannot build L3 under a {payload.get('mode')!r} L2; only AUTONOMOUS mandates take L3")
    cnf_jwk = (payload.get("cnf") or {}).get("jwk") if isinstance(payload.get("cnf"), dict) else None
    if not isinstance(cnf_jwk, dict):
        raise ValueError("cannot build L3: the L2 has no cnf.jwk binding an agent key")
    if not public_jwk_equal(agent_key.public_jwk(), cnf_jwk):
        raise ValueError(f"cannot build L3: agent key {agent_key.kid!r} is not the key bound in L2 cnf.jwk "
                         f"(kid {cnf_jwk.get('kid')!r}); the wallet would reject the signature")
    claim = _validate_chain_checkout(checkout, "checkout")
    iat = _epoch(now)
    claims = {"nonce": _new_nonce(), "aud": aud, "iat": iat, "exp": iat + ttl, "sd_hash": sd_hash(l2)}
    return _sign_sd_jwt(agent_key, kid=str(cnf_jwk["kid"]), claims=claims, disclosures=[("checkout", claim)])


# --------------------------------------------------------------------------- parsing
@dataclass(frozen=True)
class ParsedSdJwt:
    layer: str
    jwt: str
    header: dict[str, Any]
    payload: dict[str, Any]
    disclosures: list[str]


def _json_obj(raw: bytes, what: str, layer: str) -> dict[str, Any]:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ChainError(f"{layer} {what} is not valid JSON", check="format", layer=layer) from None
    if not isinstance(obj, dict):
        raise ChainError(f"{layer} {what} is not a JSON object", check="format", layer=layer)
    return obj


def parse_sd_jwt(serialized: Any, layer: str) -> ParsedSdJwt:
    """Split ``<jwt>~d~…~`` and decode header and payload (no signature check)."""
    if not isinstance(serialized, str) or not serialized:
        raise ChainError(f"{layer} is missing", check="format", layer=layer)
    if not serialized.endswith("~"):
        raise ChainError(f"{layer} must end with '~' (SD-JWT without key binding)", check="format", layer=layer)
    parts = serialized[:-1].split("~")
    jwt, discs = parts[0], parts[1:]
    segs = jwt.split(".")
    if len(segs) != 3:
        raise ChainError(f"{layer} is not a compact JWS (expected 3 '.'-separated segments)",
                         check="format", layer=layer)
    try:
        header_raw, payload_raw = _b64d(segs[0]), _b64d(segs[1])
        _b64d(segs[2])
    except (ValueError, binascii.Error):
        raise ChainError(f"{layer} has a segment that is not base64url", check="format", layer=layer) from None
    return ParsedSdJwt(layer, jwt, _json_obj(header_raw, "header", layer), _json_obj(payload_raw, "payload", layer),
                       discs)


# --------------------------------------------------------------------------- verification
class NonceCache:
    """Nonces already accepted, kept until their token expires; `add` refuses a repeat."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def add(self, nonce: str, expires_at: int, now: int) -> bool:
        """Record `nonce`; False if it was already recorded and has not expired."""
        with self._lock:
            if len(self._seen) >= self._max:
                self._purge(now)
            exp = self._seen.get(nonce)
            if exp is not None and exp >= now:
                return False
            self._seen[nonce] = expires_at
            return True

    def _purge(self, now: int) -> None:
        for k in [k for k, e in self._seen.items() if e < now]:
            del self._seen[k]

    def __len__(self) -> int:
        return len(self._seen)


@dataclass(frozen=True)
class ChainResult:
    l1_payload: dict[str, Any]
    l2_payload: dict[str, Any]
    l3_payload: dict[str, Any] | None
    l2_disclosures: dict[str, Any]
    l3_disclosures: dict[str, Any] = field(default_factory=dict)
    mode: Mode = "IMMEDIATE"

    @property
    def checkout(self) -> dict[str, Any] | None:
        """The signed checkout: L3's for AUTONOMOUS, L2's for IMMEDIATE."""
        src = self.l3_disclosures if self.mode == "AUTONOMOUS" else self.l2_disclosures
        value = src.get("checkout")
        return value if isinstance(value, dict) else None


def _check_header(p: ParsedSdJwt, expected_kid: str | None) -> None:
    h, layer = p.header, p.layer
    if h.get("typ") != TYP:
        raise ChainError(f"{layer} header typ is {h.get('typ')!r}; expected {TYP!r}", check="typ", layer=layer)
    if h.get("alg") != ALG:
        raise ChainError(f"{layer} header alg is {h.get('alg')!r}; expected {ALG!r}", check="alg", layer=layer)
    if "crit" in h:
        raise ChainError(f"{layer} header has unsupported crit parameters", check="alg", layer=layer)
    if expected_kid is not None and h.get("kid") != expected_kid:
        raise ChainError(f"{layer} header kid {h.get('kid')!r} does not match the bound key kid {expected_kid!r}",
                         check="kid", layer=layer)


def _check_signature(p: ParsedSdJwt, key_jwk: dict[str, Any]) -> None:
    try:
        key = public_key_from_jwk(key_jwk)
    except ConfigError as exc:
        raise ChainError(f"{p.layer} verification key is unusable: {exc.message}", check="key", layer=p.layer) from None
    token = jws.JWS()
    try:
        token.deserialize(p.jwt)
        token.verify(key, alg=ALG)
    except Exception as exc:  # jwcrypto: InvalidJWSSignature, InvalidJWSObject, ...
        raise ChainError(f"{p.layer} signature verification failed: {exc}", check="signature", layer=p.layer) from None


def _check_times(p: ParsedSdJwt, now: int, leeway: int) -> None:
    pl, layer = p.payload, p.layer
    for name in ("iat", "exp"):
        v = pl.get(name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ChainError(f"{layer} standard claims verification failed: {name} must be an integer, got {v!r}",
                             check="claims", layer=layer)
    if now > pl["exp"] + leeway:
        raise ChainError(f"{layer} standard claims verification failed: token expired (exp={pl['exp']}, now={now})",
                         check="expired", layer=layer)
    if pl["iat"] > now + leeway:
        raise ChainError(f"{layer} standard claims verification failed: iat {pl['iat']} is in the future (now={now})",
                         check="iat", layer=layer)
    nbf = pl.get("nbf")
    if nbf is not None:
        if isinstance(nbf, bool) or not isinstance(nbf, int):
            raise ChainError(f"{layer} standard claims verification failed: nbf must be an integer",
                             check="claims", layer=layer)
        if nbf > now + leeway:
            raise ChainError(f"{layer} standard claims verification failed: token not yet valid (nbf={nbf}, now={now})",
                             check="nbf", layer=layer)


def _check_aud(p: ParsedSdJwt, expected: str) -> None:
    aud = p.payload.get("aud")
    ok = aud == expected or (isinstance(aud, list) and expected in aud)
    if not ok:
        raise ChainError(f"{p.layer} standard claims verification failed: audience mismatch "
                         f"(expected {expected!r}, got {aud!r})", check="aud", layer=p.layer)


def _check_required(p: ParsedSdJwt, names: tuple[str, ...]) -> None:
    missing = [n for n in names if n not in p.payload]
    if missing:
        raise ChainError(f"{p.layer} is missing required claim(s): {', '.join(missing)}", check="claims", layer=p.layer)


def _bind_disclosures(p: ParsedSdJwt) -> dict[str, Any]:
    pl, layer = p.payload, p.layer
    if pl.get("_sd_alg") != SD_ALG:
        raise ChainError(f"{layer} _sd_alg is {pl.get('_sd_alg')!r}; expected {SD_ALG!r}", check="sd_alg", layer=layer)
    sd = pl.get("_sd")
    if not isinstance(sd, list) or not all(isinstance(d, str) for d in sd):
        raise ChainError(f"{layer} _sd must be a list of digests", check="disclosure", layer=layer)
    if len(set(sd)) != len(sd):
        raise ChainError(f"{layer} _sd lists a digest twice", check="disclosure", layer=layer)
    allowed = set(sd)
    seen: set[str] = set()
    out: dict[str, Any] = {}
    for b64 in p.disclosures:
        try:
            decoded = json.loads(_b64d(b64).decode("utf-8"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise ChainError(f"{layer} has a disclosure that is not base64url JSON", check="disclosure",
                             layer=layer) from None
        if (not isinstance(decoded, list) or len(decoded) != 3 or not isinstance(decoded[0], str)
                or not isinstance(decoded[1], str)):
            raise ChainError(f"{layer} disclosure is not [salt, name, value]", check="disclosure", layer=layer)
        digest = _digest(b64)
        if digest not in allowed:
            raise ChainError(f"{layer} disclosure {decoded[1]!r} not bound to signed _sd whitelist",
                             check="disclosure", layer=layer)
        if digest in seen:
            raise ChainError(f"{layer} disclosure {decoded[1]!r} presented twice", check="disclosure", layer=layer)
        seen.add(digest)
        name = decoded[1]
        if name in out or name in pl or name in ("_sd", "_sd_alg", "..."):
            raise ChainError(f"{layer} disclosure name {name!r} is duplicated or reserved", check="disclosure",
                             layer=layer)
        out[name] = decoded[2]
    return out


def _cnf_jwk(p: ParsedSdJwt) -> dict[str, Any]:
    cnf = p.payload.get("cnf")
    jwk_ = cnf.get("jwk") if isinstance(cnf, dict) else None
    if not isinstance(jwk_, dict):
        raise ChainError(f"{p.layer} cnf.jwk is missing", check="cnf", layer=p.layer)
    if not isinstance(jwk_.get("kid"), str) or not jwk_["kid"]:
        raise ChainError(f"{p.layer} cnf.jwk has no kid; the next layer's header kid cannot be bound",
                         check="kid", layer=p.layer)
    return jwk_


def _check_mode(p: ParsedSdJwt, disc: dict[str, Any]) -> Mode:
    mode = p.payload.get("mode")
    if mode not in ("IMMEDIATE", "AUTONOMOUS"):
        raise ChainError(f"L2 mode is {mode!r}; expected 'IMMEDIATE' or 'AUTONOMOUS'", check="mode", layer="L2")
    for name in ("intent", "token_info", "mandate_info"):
        if not isinstance(disc.get(name), dict):
            raise ChainError(f"L2 is missing the {name!r} disclosure", check="mode", layer="L2")
    intent = disc["intent"]
    for name in ("raw", "desc"):
        if name not in intent:
            raise ChainError(f"L2 intent has no {name!r}", check="mode", layer="L2")
    if mode == "IMMEDIATE":
        if "cnf" in p.payload:
            raise ChainError("IMMEDIATE L2 must not carry cnf", check="mode", layer="L2")
        if "expiry_time" in intent or "constraints" in intent:
            raise ChainError("IMMEDIATE L2 intent must not carry expiry_time or constraints", check="mode", layer="L2")
        if not isinstance(disc.get("checkout"), dict):
            raise ChainError("IMMEDIATE L2 must disclose the checkout", check="mode", layer="L2")
        try:
            normalize_checkout(disc["checkout"])
        except MoneyError as exc:
            raise ChainError(f"L2 checkout is malformed: {exc.message}", check="mode", layer="L2") from None
    else:
        if "cnf" not in p.payload:
            raise ChainError("AUTONOMOUS L2 must carry cnf binding the agent key", check="mode", layer="L2")
        if "checkout" in disc:
            raise ChainError("AUTONOMOUS L2 must not disclose a checkout", check="mode", layer="L2")
        if not intent.get("expiry_time") or not isinstance(intent.get("constraints"), dict):
            raise ChainError("AUTONOMOUS L2 intent must carry expiry_time and constraints", check="mode", layer="L2")
        budget = intent["constraints"].get("budget_amount")
        try:
            chain_money(budget, "intent.constraints.budget_amount")
        except MoneyError as exc:
            raise ChainError(f"L2 budget is malformed: {exc.message}", check="mode", layer="L2") from None
    return mode  # type: ignore[no-any-return]


def _compare_checkout(signed: Any, request: Any, layer: str) -> None:
    try:
        a = normalize_checkout(signed)
    except MoneyError as exc:
        raise ChainError(f"{layer} checkout is malformed: {exc.message}", check="checkout", layer=layer) from None
    try:
        b = normalize_checkout(request)
    except MoneyError as exc:
        raise ChainError(f"request checkout is malformed: {exc.message}", check="checkout_mismatch",
                         layer=layer) from None
    if a != b:
        raise ChainError(f"{layer} checkout ({a[0]}, merchant {a[1]!r}/{a[2]!r}/{a[3]!r}) differs from the request "
                         f"checkout ({b[0]}, merchant {b[1]!r}/{b[2]!r}/{b[3]!r})", check="checkout_mismatch",
                         layer=layer)


def verify_chain(l1: str, l2: str, l3: str | None = None, *, aplus_public_jwk: dict[str, Any],
                 expected_iss: str = "alipayplus.com", expected_aud: str = "alipayplus.com",
                 now: datetime | int | None = None, leeway: int = 60,
                 request_checkout: Mapping[str, Any] | None = None, nonce_cache: NonceCache | None = None,
                 require_l3_for_autonomous: bool = True, max_l3_ttl: int = L3_MAX_TTL,
                 check_l3_kid: bool = True) -> ChainResult:
    """Verify L1 -> L2 (-> L3); raise `ChainError` at the first failure.

    `request_checkout` (chain or CP shape) must equal the signed checkout: L3's for
    AUTONOMOUS, L2's for IMMEDIATE. `nonce_cache` records L3 nonces; a repeat is a replay.
    Give each verifier its own cache: the CP and the merchant both legitimately see one L3.
    `check_l3_kid=False` skips only the L3 header kid rule (the reference's behaviour, for the
    sandbox's deviation mode); the L3 signature is still verified with L2's ``cnf`` key.
    """
    ts = _epoch(now) if now is not None else int(time.time())

    # L1: Alipay+ binds the ISP key.
    p1 = parse_sd_jwt(l1, "L1")
    if p1.disclosures:
        raise ChainError("L1 must carry no disclosures", check="format", layer="L1")
    pinned_kid = aplus_public_jwk.get("kid") if isinstance(aplus_public_jwk, dict) else None
    _check_header(p1, pinned_kid if isinstance(pinned_kid, str) and pinned_kid else None)
    _check_signature(p1, aplus_public_jwk)
    if "_sd" in p1.payload or "_sd_alg" in p1.payload:
        raise ChainError("L1 must not carry _sd or _sd_alg", check="format", layer="L1")
    _check_required(p1, ("iss", "sub", "iat", "exp", "cnf", "isp_type", "isp_name"))
    _check_times(p1, ts, leeway)
    if p1.payload.get("iss") != expected_iss:
        raise ChainError(f"L1 standard claims verification failed: issuer mismatch "
                         f"(expected {expected_iss!r}, got {p1.payload.get('iss')!r})", check="iss", layer="L1")
    isp_jwk = _cnf_jwk(p1)

    # L2: the wallet signs the mandate under the ISP key L1 bound.
    p2 = parse_sd_jwt(l2, "L2")
    _check_header(p2, isp_jwk["kid"])
    _check_signature(p2, isp_jwk)
    _check_required(p2, ("nonce", "aud", "iat", "exp", "sd_hash", "idv_result", "idv_time", "mode", "_sd_alg", "_sd"))
    if p2.payload.get("sd_hash") != sd_hash(l1):
        raise ChainError("L2 sd_hash does not match the hash of L1", check="sd_hash", layer="L2")
    d2 = _bind_disclosures(p2)
    _check_times(p2, ts, leeway)
    _check_aud(p2, expected_aud)
    mode = _check_mode(p2, d2)

    if mode == "IMMEDIATE":
        if l3 is not None:
            raise ChainError("an IMMEDIATE mandate takes no L3 (its L2 binds no agent key)", check="mode", layer="L3")
        if request_checkout is not None:
            _compare_checkout(d2["checkout"], request_checkout, "L2")
        return ChainResult(p1.payload, p2.payload, None, d2, {}, mode)

    if l3 is None:
        if require_l3_for_autonomous:
            raise ChainError("AUTONOMOUS mandate used without L3: the agent must sign the checkout",
                             check="missing_l3", layer="L3")
        return ChainResult(p1.payload, p2.payload, None, d2, {}, mode)

    # L3: the agent signs the checkout under the key L2 bound.
    agent_jwk = _cnf_jwk(p2)
    p3 = parse_sd_jwt(l3, "L3")
    _check_header(p3, agent_jwk["kid"] if check_l3_kid else None)
    _check_signature(p3, agent_jwk)
    _check_required(p3, ("nonce", "aud", "iat", "exp", "sd_hash", "_sd_alg", "_sd"))
    if p3.payload.get("sd_hash") != sd_hash(l2):
        raise ChainError("L3 sd_hash does not match the hash of L2", check="sd_hash", layer="L3")
    d3 = _bind_disclosures(p3)
    _check_times(p3, ts, leeway)
    if p3.payload["exp"] - p3.payload["iat"] > max_l3_ttl:
        raise ChainError(f"L3 lifetime {p3.payload['exp'] - p3.payload['iat']}s exceeds {max_l3_ttl}s",
                         check="claims", layer="L3")
    _check_aud(p3, expected_aud)
    checkout = d3.get("checkout")
    if not isinstance(checkout, dict) or "total_amount" not in checkout:
        raise ChainError("L3 must disclose checkout with total_amount", check="disclosure", layer="L3")
    try:
        normalize_checkout(checkout)
    except MoneyError as exc:
        raise ChainError(f"L3 checkout is malformed: {exc.message}", check="checkout", layer="L3") from None
    if request_checkout is not None:
        _compare_checkout(checkout, request_checkout, "L3")
    nonce = p3.payload.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise ChainError("L3 nonce must be a non-empty string", check="claims", layer="L3")
    if nonce_cache is not None and not nonce_cache.add(nonce, p3.payload["exp"] + leeway, ts):
        raise ChainError("L3 nonce was already used (replay)", check="replay", layer="L3")
    return ChainResult(p1.payload, p2.payload, p3.payload, d2, d3, mode)


def l2_expiry_from(intent_expire_time: datetime, now: datetime) -> int:
    """Seconds-since-epoch exp for an AUTONOMOUS L2: the user-stated expiry, never a default."""
    exp = utc(intent_expire_time)
    if exp <= utc(now) + timedelta(seconds=1):
        raise ValueError(f"intent expiry {exp.isoformat()} is not in the future")
    return int(exp.timestamp())
