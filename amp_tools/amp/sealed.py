"""Secrets at rest: what a durable session or a payment in flight stores, sealed with the agent key.

The Alipay+ token, L1/L2/L3 and payment tokens are written to the ledger's database only as
AES-256-GCM ciphertext under a key derived (HKDF-SHA256) from the agent's private key, with the
row's purpose bound in as associated data. Whoever reads the database alone (a backup, a
replica, a shared PostgreSQL) learns nothing; a process holding the agent key (which it needs to
sign L3 anyway) opens them. A value sealed for one purpose does not open as another.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from amp_tools.amp.keys import AgentKey
from amp_tools.amp.secret import Secret
from amp_tools.errors import ConfigError

__all__ = ["Sealer", "sealed_key"]

_PREFIX = "v1."
#: v2 names the thumbprint of the agent key that sealed it (public), so a process holding another key can
#: say which key recovery needs instead of reporting an unknown payment: ``v2.<thumbprint>.<ciphertext>``.
_PREFIX2 = "v2."


def sealed_key(sealed: str) -> str | None:
    """The thumbprint of the agent key that sealed `sealed` (None for the older format that does not say)."""
    if not isinstance(sealed, str) or not sealed.startswith(_PREFIX2):
        return None
    thumb, _, _ = sealed[len(_PREFIX2):].partition(".")
    return thumb if thumb and len(thumb) <= 64 and thumb.replace("-", "").replace("_", "").isalnum() else None


class Sealer:
    """Seal and open small JSON documents of secrets with a key derived from an `AgentKey`."""

    __slots__ = ("_aead", "kid", "thumbprint")

    def __init__(self, agent_key: AgentKey) -> None:
        private = agent_key.private_bytes()
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"amp-tools sealed v1",
                       info=b"session and payment secrets at rest").derive(private)
        self._aead = AESGCM(derived)
        self.kid = agent_key.kid
        self.thumbprint = agent_key.thumbprint()

    def seal(self, values: dict[str, Any], *, purpose: str) -> str:
        """`values` may hold `Secret`s (revealed only into the ciphertext) and plain JSON values."""
        plain = json.dumps({k: ({"$secret": v.reveal()} if isinstance(v, Secret) else v) for k, v in values.items()},
                           sort_keys=True, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        box = self._aead.encrypt(nonce, plain, purpose.encode())
        return f"{_PREFIX2}{self.thumbprint}." + base64.urlsafe_b64encode(nonce + box).decode("ascii")

    def open(self, sealed: str, *, purpose: str) -> dict[str, Any]:
        """The sealed values, secrets wrapped in `Secret` again; ConfigError if this key cannot open them."""
        if sealed.startswith(_PREFIX2):
            body = sealed[len(_PREFIX2):].partition(".")[2]
        elif sealed.startswith(_PREFIX):
            body = sealed[len(_PREFIX):]
        else:
            raise ConfigError("sealed data has an unknown format; it was not written by this amp-tools")
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            plain = self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
        except (InvalidTag, ValueError):
            other = sealed_key(sealed)
            raise ConfigError(
                f"sealed {purpose} data cannot be opened with agent key {self.kid!r}: it was sealed with another "
                "agent key" + (f" (sealed with key {other}, this process has {self.thumbprint})" if other else "")
                + "; use the agent key file the session was created with") from None
        data = json.loads(plain)
        return {k: (Secret(v["$secret"]) if isinstance(v, dict) and set(v) == {"$secret"} else v)
                for k, v in data.items()}
