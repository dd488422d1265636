"""The AMP wire: agent keys, the SD-JWT mandate chain, wire models and the async client."""

from __future__ import annotations

from amp_tools.amp.chain import ChainError, ChainResult, NonceCache, verify_chain
from amp_tools.amp.client import AmpClient
from amp_tools.amp.keys import AgentKey
from amp_tools.amp.models import Checkout, Constraints
from amp_tools.amp.secret import Secret

__all__ = [
    "AgentKey",
    "AmpClient",
    "ChainError",
    "ChainResult",
    "Checkout",
    "Constraints",
    "NonceCache",
    "Secret",
    "verify_chain",
]
