"""Who works on a payment in flight, and whether they are still there.

An owner is ``host|pid|start`` (the process start time from /proc where the OS has it, so a
reused pid is not mistaken for the owner). On the owner's own host a process check answers
for sure; elsewhere the lease (renewed by a heartbeat while the payment is in flight) decides.
Recovery settles a payment only when its owner is gone: never on age alone.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime

__all__ = ["current_owner", "owner_alive"]

_HOST = socket.gethostname() or "localhost"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 22 (starttime), counted after the command name, which may itself hold spaces and parentheses.
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None


_OWNER = f"{_HOST}|{os.getpid()}|{_start_time(os.getpid()) or uuid.uuid4().hex[:12]}"


def current_owner() -> str:
    """This process's owner id (a forked child computes its own)."""
    global _OWNER
    if int(_OWNER.split("|")[1]) != os.getpid():
        _OWNER = f"{_HOST}|{os.getpid()}|{_start_time(os.getpid()) or uuid.uuid4().hex[:12]}"
    return _OWNER


def _process_alive(pid: int, start: str) -> bool:
    actual = _start_time(pid)
    if actual is not None:
        return actual == start
    if os.path.isdir("/proc"):
        return False  # /proc is there and has no such process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_alive(owner: str | None, lease_until: datetime | None, now: datetime) -> bool:
    """True while the owner may still act on the payment."""
    if not owner:
        return False
    host, _, rest = owner.partition("|")
    pid_text, _, start = rest.partition("|")
    if host == _HOST and pid_text.isdigit():
        return _process_alive(int(pid_text), start)
    return lease_until is not None and lease_until >= now
