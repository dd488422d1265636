"""A sandbox served by uvicorn on a free loopback port, for tests that cross a real socket or a process."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from amp_tools.sandbox import Sandbox, SandboxConfig, build_server

__all__ = ["free_port", "served_sandbox"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served_sandbox(config: SandboxConfig | None = None) -> Iterator[tuple[Sandbox, str]]:
    """(the sandbox, its base URL) while it serves; stopped afterwards."""
    port = free_port()
    sandbox, server = build_server("127.0.0.1", port, config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the sandbox did not start serving within 15 s"
    try:
        yield sandbox, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
