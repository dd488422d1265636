"""The wheel users install holds every package, data file and `py.typed` of the checkout.

CI installs from the editable checkout, where a file missing from the wheel still imports; this test
builds the wheel from the tracked files alone (offline, no isolated build environment) and compares
its listing with the tree: every tracked file of a shipped package must be in it, nothing else may
be, and the metadata must name the distribution, version, command and extras users install.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import amp_tools
from amp_tools._version import DISTRIBUTION

ROOT = Path(__file__).resolve().parents[2]

# Where each shipped import package lives in the checkout (pyproject's package-dir).
PACKAGE_DIRS = {
    "amp_tools": "amp_tools",
    "amp_langchain": "adapters/amp_langchain",
    "amp_crewai": "adapters/amp_crewai",
    "amp_autogen": "adapters/amp_autogen",
    "amp_agent_framework": "adapters/amp_agent_framework",
    "amp_examples": "examples",
}
TYPED = ("amp_tools", "amp_langchain", "amp_crewai", "amp_autogen", "amp_agent_framework")
EXTRAS = ("sandbox", "langchain", "crewai", "autogen", "agent-framework", "openai", "postgres", "otel", "mcp",
          "server")


def _tracked() -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the wheel test lists the checkout's tracked files with git; this is not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return [name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def _expected_in_wheel(tracked: list[str]) -> set[str]:
    expected = set()
    for name in tracked:
        for package, folder in PACKAGE_DIRS.items():
            if name.startswith(folder + "/"):
                expected.add(package + name[len(folder):])
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tracked = _tracked()
    src = tmp_path_factory.mktemp("src")
    for name in tracked:
        target = src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(src)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("*.whl")
    yield built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name for name in archive.namelist() if not name.endswith("/")}


def test_every_tracked_file_of_a_shipped_package_is_in_the_wheel(wheel: Path) -> None:
    expected = _expected_in_wheel(_tracked())
    missing = sorted(expected - _names(wheel))
    assert not missing, f"files of shipped packages missing from the wheel (pyproject packages/package-data): {missing}"
    subpackages = {str(Path(name).parent) for name in expected if name.endswith("/__init__.py")}
    assert "amp_tools/ledger" in subpackages and "amp_tools/payments" in subpackages


def test_every_import_package_is_typed(wheel: Path) -> None:
    names = _names(wheel)
    assert [p for p in TYPED if f"{p}/py.typed" not in names] == []


def test_the_wheel_ships_nothing_else(wheel: Path) -> None:
    dist_info = f"{DISTRIBUTION.replace('-', '_')}-{amp_tools.__version__}.dist-info/"
    stray = sorted(name for name in _names(wheel)
                   if not name.startswith(dist_info) and name.split("/")[0] not in PACKAGE_DIRS)
    assert stray == []
    expected = _expected_in_wheel(_tracked())
    unexpected = sorted(name for name in _names(wheel)
                        if not name.startswith(dist_info) and name not in expected)
    assert unexpected == [], "the wheel carries files the checkout does not track (build leftovers?)"


def test_metadata_names_the_distribution_version_command_and_extras(wheel: Path) -> None:
    dist_info = f"{DISTRIBUTION.replace('-', '_')}-{amp_tools.__version__}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.parser.Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        names = archive.namelist()
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["Version"] == amp_tools.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["Summary"] and "AMP" in metadata["Summary"]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "Quickstart" in (metadata.get_payload() or "")
    classifiers = metadata.get_all("Classifier") or []
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.11" in classifiers
    assert set(EXTRAS) <= set(metadata.get_all("Provides-Extra") or [])
    assert metadata.get_all("Keywords") or metadata.get("Keywords")
    assert any(line.strip() == "amp-tools = amp_tools.cli:main" for line in entry_points.splitlines())
    assert any(name.startswith(dist_info + "/") and "LICENSE" in name for name in names)
    # The core installs without any agent framework: no framework in the unconditional requirements.
    core = [req for req in metadata.get_all("Requires-Dist") or [] if "extra ==" not in req]
    frameworks = ("langchain", "crewai", "autogen", "agent-framework", "langgraph", "mcp", "fastapi")
    assert [req for req in core if req.split()[0].lower().startswith(frameworks)] == []
