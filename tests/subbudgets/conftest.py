"""The sub-budget tests use the shared engine fixtures of tests/conftest.py (`backend`, `target`); this folder's
helpers are put on sys.path for spawned workers."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
