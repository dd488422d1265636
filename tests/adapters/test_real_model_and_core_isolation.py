"""`real_model` wiring (no request is sent) and the core's independence from every framework."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from amp_examples.scripted.real import real_model
from amp_tools.errors import ConfigError

FRAMEWORKS = ("langchain", "langgraph", "crewai", "autogen_core", "autogen_agentchat", "autogen_ext", "openai",
              "agent_framework")


def test_importing_amp_tools_loads_no_framework() -> None:
    code = ("import sys, amp_tools, amp_tools.toolkit; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0].startswith({FRAMEWORKS!r})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_missing_model_name_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMP_TOOLS_MODEL", raising=False)
    with pytest.raises(ConfigError, match="AMP_TOOLS_MODEL is not set"):
        real_model("crewai")


def test_openai_without_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMP_TOOLS_MODEL", "gpt-4o-mini")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY is not set"):
        real_model("autogen")


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AMP_TOOLS_MODEL", "llama3.1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return "http://127.0.0.1:9/v1"


def test_crewai_model_uses_the_explicit_base_url(local_server: str) -> None:
    llm = real_model("crewai")
    assert (llm.model, llm.base_url) == ("llama3.1", local_server)


def test_autogen_model_declares_function_calling(local_server: str) -> None:
    if importlib.util.find_spec("tiktoken") is None:
        with pytest.raises(ConfigError, match=r"pip install 'amp-agent-payments\[autogen,openai\]'"):
            real_model("autogen")
        return
    client = real_model("autogen")
    assert client.model_info["function_calling"] is True


def test_langchain_model_or_a_clear_install_hint(local_server: str) -> None:
    if importlib.util.find_spec("langchain_openai") is None:
        with pytest.raises(ConfigError, match=r"pip install 'amp-agent-payments\[langchain,openai\]'"):
            real_model("langchain")
        return
    chat = real_model("langchain")
    assert (chat.model_name, str(chat.openai_api_base)) == ("llama3.1", local_server)


def test_agent_framework_model_or_a_clear_install_hint(local_server: str) -> None:
    if importlib.util.find_spec("agent_framework_openai") is None:
        with pytest.raises(ConfigError, match=r"pip install 'amp-agent-payments\[agent-framework,openai\]'"):
            real_model("agent-framework")
        return
    client = real_model("agent-framework")
    assert (client.model, str(client.client.base_url)) == ("llama3.1", local_server + "/")
