"""`amp-tools demo travel --cp URL --merchants FILE` against a network served on a port: the
reference-like sandbox (no merchant registry, no order status, the wallet confirming by itself),
started as `amp-tools sandbox --reference-like`, with the agent key registered first, all as a
user would type it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from amp_tools.sandbox import Sandbox, SandboxConfig
from tests._shared._served import free_port

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from amp_tools.cli import main; main()"]


def env_for(home: Path) -> dict[str, str]:
    env = {**os.environ, "AMP_TOOLS_HOME": str(home), "COLUMNS": "100"}
    for name in ("AMP_TOOLS_LEDGER_URL", "AMP_TOOLS_MODEL"):
        env.pop(name, None)
    return env


def cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, env=env_for(home), timeout=300,
                          check=False)


@pytest.fixture
def network(tmp_path: Path) -> Iterator[str]:
    """`amp-tools sandbox --reference-like` on a free port, as its own process."""
    port = free_port()
    proc = subprocess.Popen([*CLI, "sandbox", "--reference-like", "--port", str(port)], cwd=ROOT,
                            env=env_for(tmp_path / "server-home"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/docs", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def merchants_file(tmp_path: Path, url: str) -> Path:
    """The shipped examples/merchants/sandbox.yaml, pointed at the port the network was served on."""
    text = (ROOT / "examples" / "merchants" / "sandbox.yaml").read_text(encoding="utf-8")
    path = tmp_path / "merchants.yaml"
    path.write_text(text.replace("http://127.0.0.1:8765", url), encoding="utf-8")
    return path


def test_the_shipped_merchants_file_lists_the_sandbox_merchants() -> None:
    from amp_tools.toolkit.directory import MerchantDirectory

    shipped = {m.merchant_id: (m.name, m.mcc, m.base_url) for m in
               MerchantDirectory.load(ROOT / "examples" / "merchants" / "sandbox.yaml").all()}
    served = {m["merchantId"]: (m["name"], m["mcc"], "http://127.0.0.1:8765" + m["baseUrl"])
              for m in Sandbox(SandboxConfig.reference_like()).merchant_directory()}
    assert shipped == served and len(shipped) == 6


def test_the_demo_books_the_trip_on_a_network_served_on_a_port(network: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert httpx.get(f"{network}/registry/merchants", timeout=5).status_code == 404  # no registry, as the reference
    registered = cli("key", "register", "--network", f"{network}/network", "--agent-id", "kl-travel", home=home)
    assert registered.returncode == 0, registered.stderr
    assert registered.stdout.startswith("registered key ") and "for agent kl-travel" in registered.stdout

    done = cli("demo", "travel", "--cp", network, "--merchants", str(merchants_file(tmp_path, network)),
               "--agent-id", "kl-travel", home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert f"network: Credential Provider {network}, merchants from" in out
    assert "Skylark Air: paid 189.00 SGD (= 139.86 USD)" in out
    assert "Malaya Car Rental: paid 390.00 MYR (= 81.90 USD)" in out
    assert "audit chain ok" in out
    budget = done.stdout.split(", budget ", 1)[1].split()[0]
    shown = cli("ledger", "show", "--budget", budget, home=home)
    assert shown.returncode == 0 and "3 entries" in shown.stdout, shown.stdout + shown.stderr
    assert sum(" committed " in line for line in shown.stdout.splitlines()) == 3
    # the network's own records agree: three captured payments, in the merchants' currencies
    captured = httpx.get(f"{network}/_admin/payments", timeout=5).json()
    captured = captured["data"] if isinstance(captured, dict) else captured
    assert sorted((p["amount"]["cent"], p["amount"]["currency"]) for p in captured if p["status"] == "SUCCESS") == [
        (18900, "SGD"), (39000, "MYR"), (110200, "MYR")]


def test_cp_and_merchants_go_together(tmp_path: Path) -> None:
    done = cli("demo", "travel", "--cp", "http://127.0.0.1:9", home=tmp_path / "home")
    assert done.returncode == 2 and "--cp and --merchants go together" in done.stderr
    assert "Traceback" not in done.stderr
