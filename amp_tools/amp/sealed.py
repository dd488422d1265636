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

__all__ = ["Sealer"]

_PREFIX = "v1."


class Sealer:
    """Seal and open small JSON documents of secrets with a key derived from an `AgentKey`."""

    __slots__ = ("_aead", "kid")

    def __init__(self, agent_key: AgentKey) -> None:
        private = agent_key.private_bytes()
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"amp-tools sealed v1",
                       info=b"session and payment secrets at rest").derive(private)
        self._aead = AESGCM(derived)
        self.kid = agent_key.kid

    def seal(self, values: dict[str, Any], *, purpose: str) -> str:
        """`values` may hold `Secret`s (revealed only into the ciphertext) and plain JSON values."""
        plain = json.dumps({k: ({"$secret": v.reveal()} if isinstance(v, Secret) else v) for k, v in values.items()},
                           sort_keys=True, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        box = self._aead.encrypt(nonce, plain, purpose.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + box).decode("ascii")

    def open(self, sealed: str, *, purpose: str) -> dict[str, Any]:
        """The sealed values, secrets wrapped in `Secret` again; ConfigError if this key cannot open them."""
        if not sealed.startswith(_PREFIX):
            raise ConfigError("sealed data has an unknown format; it was not written by this amp-tools")
        try:
            raw = base64.urlsafe_b64decode(sealed[len(_PREFIX):].encode("ascii"))
            plain = self._aead.decrypt(raw[:12], raw[12:], purpose.encode())
        except (InvalidTag, ValueError):
            raise ConfigError(
                f"sealed {purpose} data cannot be opened with agent key {self.kid!r}: it was sealed with another "
                "agent key (use the agent key file the session was created with)") from None
        data = json.loads(plain)
        return {k: (Secret(v["$secret"]) if isinstance(v, dict) and set(v) == {"$secret"} else v)
                for k, v in data.items()}
