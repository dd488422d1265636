"""The budget owner's authority: the owner's ES256 key, and the signed payloads of each decision.

`keys` owns the owner's key files (`amp-tools owner init` / `show`) and the agent's pinned public
key; `payloads` owns the exact, canonical fields each decision governs; `signing` signs them and
verifies a signature against a payload recomputed from the rows the agent is about to act on.
"""

from __future__ import annotations

from .keys import OWNER_KEY_ENV, OwnerKey, OwnerPublicKey, default_owner_key_path, load_owner_signer, resolve_owner_key
from .payloads import approval_payload, control_payload, policy_payload
from .signing import OwnerSignatureInvalid, UnsignedAuthority, sign, verify

__all__ = ["OWNER_KEY_ENV", "OwnerKey", "OwnerPublicKey", "OwnerSignatureInvalid", "UnsignedAuthority",
           "approval_payload", "control_payload", "default_owner_key_path", "load_owner_signer", "policy_payload",
           "resolve_owner_key", "sign", "verify"]
