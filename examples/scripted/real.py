"""Build a real OpenAI-compatible model for any of the frameworks from the environment.

Variables (one path for OpenAI, vLLM, LM Studio, Ollama's /v1, ...):

* ``OPENAI_BASE_URL``: the server's ``/v1`` URL; default ``https://api.openai.com/v1``.
* ``OPENAI_API_KEY``: the key; local servers accept any text, so it is only required for api.openai.com.
* ``AMP_TOOLS_MODEL``: the model name, e.g. ``gpt-4o-mini`` or ``llama3.1`` (required).

The base URL is always passed explicitly: CrewAI refuses unknown model names without it, and it
keeps the frameworks pointed at the same server. Client packages are imported lazily.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Literal

from amp_tools.errors import ConfigError

__all__ = ["ENV_BASE_URL", "ENV_KEY", "ENV_MODEL", "real_model"]

ENV_BASE_URL, ENV_KEY, ENV_MODEL = "OPENAI_BASE_URL", "OPENAI_API_KEY", "AMP_TOOLS_MODEL"
_OPENAI = "https://api.openai.com/v1"
_EXTRA = {"langchain": "amp-agent-payments[langchain,openai]", "autogen": "amp-agent-payments[autogen,openai]",
          "crewai": "amp-agent-payments[crewai]", "agent-framework": "amp-agent-payments[agent-framework,openai]"}

Framework = Literal["langchain", "autogen", "crewai", "agent-framework"]


def _settings() -> tuple[str, str, str]:
    model = os.environ.get(ENV_MODEL, "").strip()
    if not model:
        raise ConfigError(f"{ENV_MODEL} is not set; expected a model name such as 'gpt-4o-mini' or 'llama3.1'",
                          hint=f"Also set {ENV_BASE_URL} (default {_OPENAI}) and {ENV_KEY}.")
    base_url = os.environ.get(ENV_BASE_URL, "").strip() or _OPENAI
    key = os.environ.get(ENV_KEY, "").strip()
    if not key and base_url.rstrip("/") == _OPENAI:
        raise ConfigError(f"{ENV_KEY} is not set; api.openai.com needs a key",
                          hint=f"Set {ENV_KEY}, or point {ENV_BASE_URL} at a local OpenAI-compatible server.")
    return model, base_url, key or "not-needed"


def real_model(framework: Framework) -> Any:
    """A chat model for `framework`: ChatOpenAI, an OpenAIChatCompletionClient (AutoGen's or Agent
    Framework's) or a crewai LLM."""
    if framework not in _EXTRA:
        raise ConfigError(f"unknown framework {framework!r}; expected one of {sorted(_EXTRA)}")
    model, base_url, key = _settings()
    try:
        if framework == "langchain":
            # by name: langchain-openai is an optional extra that may be absent when type-checking
            chat_openai = importlib.import_module("langchain_openai").ChatOpenAI
            return chat_openai(model=model, base_url=base_url, api_key=key)
        if framework == "autogen":
            from autogen_core.models import ModelFamily, ModelInfo
            from autogen_ext.models.openai import OpenAIChatCompletionClient

            # model_info is required for names autogen does not know (every non-OpenAI model).
            info = ModelInfo(vision=False, function_calling=True, json_output=False, family=ModelFamily.UNKNOWN,
                             structured_output=False)
            return OpenAIChatCompletionClient(model=model, base_url=base_url, api_key=key, model_info=info)
        if framework == "agent-framework":
            # by name: agent-framework-openai comes with the openai extra and may be absent when type-checking
            client = importlib.import_module("agent_framework_openai").OpenAIChatCompletionClient
            return client(model=model, base_url=base_url, api_key=key)
        from crewai import LLM

        return LLM(model=f"openai/{model}", base_url=base_url, api_key=key)
    except ImportError as exc:
        raise ConfigError(f"the {framework} OpenAI client is not installed ({exc.name or exc})",
                          hint=f"Install it with: pip install '{_EXTRA[framework]}'") from exc
