"""Serve a sandbox over TCP with uvicorn (``amp-tools sandbox --port N``)."""

from __future__ import annotations

import uvicorn

from amp_tools.clock import OffsetClock
from amp_tools.sandbox.app import Sandbox
from amp_tools.sandbox.config import IdvMode, SandboxConfig

__all__ = ["build_server", "serve"]


def build_server(host: str = "127.0.0.1", port: int = 8765, config: SandboxConfig | None = None,
                 *, log_level: str = "warning") -> tuple[Sandbox, uvicorn.Server]:
    """A sandbox on the wall clock (movable by /_admin/advanceTime) and a uvicorn server for it."""
    sandbox = Sandbox(config, clock=OffsetClock())
    server = uvicorn.Server(uvicorn.Config(sandbox.app, host=host, port=port, log_level=log_level))
    return sandbox, server


def serve(host: str = "127.0.0.1", port: int = 8765, config: SandboxConfig | None = None, *,
          idv_mode: IdvMode | str | None = None) -> None:
    """Run until interrupted; `idv_mode` overrides the config's."""
    cfg = config or SandboxConfig()
    if idv_mode is not None:
        if idv_mode not in ("auto", "manual", "reject"):
            raise ValueError(f"idv_mode {idv_mode!r} must be 'auto', 'manual' or 'reject'")
        cfg.idv_mode = idv_mode  # type: ignore[assignment]
    _, server = build_server(host, port, cfg, log_level="info")
    server.run()
