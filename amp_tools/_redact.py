"""The one rule set of what is a secret, and the walk that takes secrets out of a value.

Secrets are hidden in three places, each in its own form: error texts a model reads
(`amp_tools.amp.codes.redact_text`), conformance evidence (`amp_tools.conformance.redact`) and audit
payloads before they are hashed (`amp_tools.ledger.audit.redact`). What they hide is decided here:
the secrets that show up inside free text (`scrub_text`), the AMP wire fields that are secrets
(`AMP_SECRET_FIELDS`), and the key names that say a value is one (`is_secret_key`). How a secret
is replaced stays with each caller.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

__all__ = ["AMP_SECRET_FIELDS", "SecretKind", "is_secret_key", "redact_tree", "scrub_text"]

#: AMP wire fields whose values let their holder act for the user: the mandate chain strings, payment tokens
#: and their ids, the IDV handle, the payment method, and a JWK's private part (``d``).
AMP_SECRET_FIELDS = frozenset({"l1Serialized", "l2Serialized", "l3Serialized", "paymentToken", "tokenId",
                               "authSessionId", "paymentMethodId", "d"})

# Key names that say their value is a secret whatever the payload: a substring anywhere in the name,
# or one of the short names our own payloads use for chains, keys and signatures.
_MARKERS = ("secret", "token", "password", "private", "api_key", "apikey", "credential", "authorization",
            "serialized", "jwt", "signature", "cvv")
_SHORT_NAMES = frozenset({"l1", "l2", "l3", "key", "sig"})

SecretKind = Literal["sd-jwt", "payment-token", "hex-id"]

# Ordered: a chain string may hold what looks like a token or an id, so it goes first, whole.
_IN_TEXT: tuple[tuple[SecretKind, re.Pattern[str]], ...] = (
    ("sd-jwt", re.compile(r"eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.~]*")),
    ("payment-token", re.compile(r"\b28\d{6}[0-9a-fA-F]{16,}\b")),
    ("hex-id", re.compile(r"\b[0-9a-f]{32}\b")),
)


def scrub_text(text: str, shorten: Callable[[SecretKind, str], str]) -> str:
    """`text` with each secret in it (SD-JWT chain strings, Alipay+ payment tokens, 32-hex ids such as
    token ids and IDV handles) replaced by ``shorten(kind, secret)``."""
    for kind, pattern in _IN_TEXT:
        text = pattern.sub(functools.partial(_replace, kind, shorten), text)
    return text


def _replace(kind: SecretKind, shorten: Callable[[SecretKind, str], str], match: re.Match[str]) -> str:
    return shorten(kind, match.group(0))


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a value under `key` is a secret: an AMP secret field, or a name that says so."""
    # Cached: payloads reuse a handful of key names, and audit payloads ask for every key of every record.
    low = key.lower()
    return key in AMP_SECRET_FIELDS or low in _SHORT_NAMES or any(marker in low for marker in _MARKERS)


def redact_tree(value: Any, secret_key: Callable[[str], bool], hide: Callable[[Any], Any],
                text: Callable[[str], str] | None = None) -> Any:
    """A copy of a JSON-like value: under each key `secret_key` names, ``hide(value)``; every other string
    through `text` when given. Mappings become dicts with string keys, tuples become lists."""
    if isinstance(value, Mapping):
        return {str(k): hide(v) if secret_key(str(k)) else redact_tree(v, secret_key, hide, text)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v, secret_key, hide, text) for v in value]
    if text is not None and isinstance(value, str):
        return text(value)
    return value
