"""`amp-tools serve`: the budget owner's web app (budgets overview, a page per budget, approval inbox, controls).

Needs the ``[server]`` extra (FastAPI on uvicorn). See `create_app` and `ServeSettings`.
"""

from __future__ import annotations

from amp_tools.server.app import ServeSettings, create_app
from amp_tools.server.auth import hash_secret, verify_secret
from amp_tools.server.control import freeze, resolve_unknown, revoke_mandate

__all__ = ["ServeSettings", "create_app", "freeze", "hash_secret", "resolve_unknown", "revoke_mandate",
           "verify_secret"]
