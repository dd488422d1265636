"""Shared fixtures for the AMP layer: three session-wide P-256 keys (A+, ISP, agent)."""

from __future__ import annotations

import pytest

from amp_tools.amp.keys import AgentKey


@pytest.fixture(scope="session")
def aplus_key() -> AgentKey:
    return AgentKey.generate("aplus-key-1")


@pytest.fixture(scope="session")
def isp_key() -> AgentKey:
    return AgentKey.generate("mpp-key-1")


@pytest.fixture(scope="session")
def agent_key() -> AgentKey:
    return AgentKey.generate("agent-key-1")
