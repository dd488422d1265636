"""The engines every backend-level test runs on (kept apart from `_ledger_helpers`, which spawned
workers import without pytest)."""

from __future__ import annotations

import pytest

#: PostgreSQL cases carry the `postgres` mark.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
