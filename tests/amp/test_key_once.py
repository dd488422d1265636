"""Issue 20, finding 4: the agent key is created once and never forked or replaced.

Sixteen real processes start together on an empty home; every one must sign with the key that ends
up on disk, or payments sealed by the losers could never be opened by recovery.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import stat
from pathlib import Path
from typing import Any

from amp_tools.amp.keys import AgentKey


def _racer(path: str, gate: Any, out: Any) -> None:
    gate.wait()  # all sixteen released at once
    out.put(AgentKey.load_or_create(path).thumbprint())


def test_sixteen_processes_on_an_empty_home_all_use_the_one_key_on_disk(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    path = tmp_path / "home" / "agent-key.jwk"
    gate, out = ctx.Barrier(16), ctx.Queue()
    procs = [ctx.Process(target=_racer, args=(str(path), gate, out)) for _ in range(16)]
    for proc in procs:
        proc.start()
    thumbs = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    on_disk = AgentKey.load(path).thumbprint()
    assert thumbs == [on_disk] * 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".agent-key-")] == []  # no temp left


def test_an_existing_key_is_loaded_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agent-key.jwk"
    first = AgentKey.load_or_create(path)
    before = path.read_bytes()
    again = AgentKey.load_or_create(path)
    assert again.thumbprint() == first.thumbprint() and path.read_bytes() == before


def test_a_key_published_meanwhile_wins_over_the_one_being_created(tmp_path: Path) -> None:
    # The lost race in slow motion: another process linked its key between our check and our link.
    path = tmp_path / "agent-key.jwk"
    theirs = AgentKey.generate()
    theirs.save(path)
    mine = AgentKey.generate()
    assert mine._publish(path) is False
    assert AgentKey.load(path).thumbprint() == theirs.thumbprint()
    assert sorted(os.listdir(tmp_path)) == ["agent-key.jwk"]
