"""Port checks for the commands that serve (``serve``, ``sandbox``, the examples): a busy port is
one clear line and exit 2 before anything else is printed, never a URL nobody answers nor a traceback."""

from __future__ import annotations

import errno
import socket

from amp_tools.errors import ConfigError

__all__ = ["require_free_port"]


def require_free_port(host: str, port: int, *, option: str = "--port") -> None:
    """Raise `ConfigError` unless `host`:`port` can be bound right now (the port is then free again)."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"{option} {port} must be between 1 and 65535")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as uvicorn sets it: a port in TIME_WAIT counts as free, a listener as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use",
                                  hint=f"Stop what is listening there or pick another port with {option}.") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              hint=f"Check the address, or pick another port with {option}.") from None
