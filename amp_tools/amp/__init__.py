"""The AMP wire: agent keys, the SD-JWT mandate chain, wire models and the async client."""

from __future__ import annotations

from amp_tools.amp.chain import ChainError, ChainResult, NonceCache, build_l3, sd_hash, verify_chain
from amp_tools.amp.client import AmpClient
from amp_tools.amp.codes import hint_for, map_cp_error
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import Checkout, Constraints, CpCheckout
from amp_tools.amp.secret import Secret

__all__ = [
    "AgentKey",
    "AmpClient",
    "ChainError",
    "ChainResult",
    "Checkout",
    "Constraints",
    "CpCheckout",
    "NonceCache",
    "Secret",
    "build_l3",
    "hint_for",
    "map_cp_error",
    "sd_hash",
    "verify_chain",
]
