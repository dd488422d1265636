"""The budget owner's authority: the owner's ES256 key, and the signed payloads of each decision.

`keys` owns the owner's key files (`amp-tools owner init` / `show`) and the agent's pinned public
key; `payloads` owns the exact, canonical fields each decision governs; `signing` signs them and
verifies a signature against a payload recomputed from the rows the agent is about to act on.
"""

from __future__ import annotations

# The key and the signature users handle; the payload layouts and key paths stay in their modules.
from .keys import OwnerKey, OwnerPublicKey, load_owner_signer, resolve_owner_key
from .signing import OwnerSignatureInvalid, UnsignedAuthority, sign, verify

__all__ = ["OwnerKey", "OwnerPublicKey", "OwnerSignatureInvalid", "UnsignedAuthority", "load_owner_signer",
           "resolve_owner_key", "sign", "verify"]
