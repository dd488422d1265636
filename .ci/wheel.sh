#!/usr/bin/env bash
# What a user installs, tested as a user installs it: builds the sdist and the wheel, checks their
# metadata, then installs the WHEEL (never the checkout) into fresh venvs outside the checkout and
# runs from there. The framework extras go in one after another, in both orders (pip does not
# re-resolve what an earlier install put there), and every demo must still finish.
#   core       the wheel alone: the core imports with no framework, the command answers
#   order A/B  [langchain,sandbox,crewai] then [autogen], and the reverse: pip check, the demo per framework
#   services   [agent-framework,mcp,server,sandbox,postgres,otel]: the Agent Framework demo, the MCP
#              client config, serve --help, conformance against `amp-tools sandbox` on a port,
#              and an import of every public name
# Usage: bash .ci/wheel.sh [PYTHON]  (PYTHON builds; default .venv/bin/python, which has `build`).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
python=${1:-.venv/bin/python}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
export AMP_TOOLS_HOME="$root/home"
unset AMP_TOOLS_MODEL AMP_TOOLS_LEDGER_URL AMP_TOOLS_BUDGET OPENAI_API_KEY OPENAI_BASE_URL
start=$(date +%s)

echo "+ build the sdist and the wheel"
"$python" -m build --no-isolation --outdir "$root/dist" . > "$root/build.log" 2>&1 || { cat "$root/build.log"; exit 1; }
wheel=$(ls "$root"/dist/*.whl)
"$python" -m twine check --strict "$root"/dist/*
# Never import the checkout: everything below runs from an empty folder outside it.
cd "$root"

quiet_pip() {  # pip, without the warnings a machine's pip configuration may print for every package
    "$@" 2> >(grep -v "^WARNING: Location" >&2)
}

fresh() {  # fresh NAME SPEC...: a new venv with the given requirements
    local venv="$root/$1"; shift
    python3 -m venv "$venv"
    quiet_pip "$venv/bin/pip" install -q "$@"
}

run_demo() {  # run_demo VENV FRAMEWORK
    local log="$root/$(basename "$1")-$2.log"
    "$1/bin/amp-tools" demo travel --framework "$2" --scripted --approve yes > "$log" 2>&1 \
        || { cat "$log"; echo "wheel: the demo under $2 failed in $(basename "$1")"; exit 1; }
    grep -q "audit chain ok" "$log" || { cat "$log"; echo "wheel: the demo under $2 did not finish"; exit 1; }
}

not_from_checkout() {  # the installed package, not the source tree
    local where
    where=$("$1/bin/python" -c "import amp_tools; print(amp_tools.__file__)")
    case "$where" in "$checkout"/*) echo "wheel: $1 imports amp_tools from the checkout ($where)"; exit 1;; esac
}

echo "+ [core] $(basename "$wheel") with no extra"
fresh core "$wheel"
not_from_checkout "$root/core"
"$root/core/bin/python" - <<'PY'
import sys
import amp_tools
frameworks = [m for m in sys.modules if m.split(".")[0] in {"langchain", "crewai", "autogen_core", "agent_framework",
                                                            "langgraph", "mcp", "fastapi", "starlette"}]
assert not frameworks, f"import amp_tools loaded {frameworks}"
print("core imports:", amp_tools.__version__)
PY
"$root/core/bin/amp-tools" --version
policy=$("$root/core/bin/python" -c "import amp_examples, pathlib; print(pathlib.Path(amp_examples.__file__).parent / 'policies' / 'travel_demo.yaml')")
"$root/core/bin/amp-tools" policy check "$policy"

for order in "crewai autogen" "autogen crewai"; do
    set -- $order
    name="order-$1-then-$2"
    echo "+ [$name] $(basename "$wheel")[langchain,sandbox,$1] then [$2]"
    fresh "$name" "$wheel[langchain,sandbox,$1]"
    quiet_pip "$root/$name/bin/pip" install -q "$wheel[$2]"
    "$root/$name/bin/pip" check
    not_from_checkout "$root/$name"
    for framework in langchain crewai autogen; do
        echo "+ [$name] amp-tools demo travel --framework $framework"
        run_demo "$root/$name" "$framework"
    done
done

echo "+ [services] $(basename "$wheel")[agent-framework,mcp,server,sandbox,postgres,otel]"
fresh services "$wheel[agent-framework,mcp,server,sandbox,postgres,otel]"
"$root/services/bin/pip" check
not_from_checkout "$root/services"
run_demo "$root/services" agent-framework
"$root/services/bin/amp-tools" mcp --help > /dev/null
if "$root/services/bin/amp-tools" mcp --help | grep -q -- "--print-config"; then
    "$root/services/bin/amp-tools" mcp --print-config claude > "$root/mcp-config.json"
    "$root/services/bin/python" -c "import json, sys; json.load(open(sys.argv[1]))" "$root/mcp-config.json"
fi
"$root/services/bin/amp-tools" serve --help > /dev/null
port=$("$root/services/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$root/services/bin/amp-tools" sandbox --port "$port" > "$root/sandbox.log" 2>&1 &
sandbox_pid=$!
trap 'kill $sandbox_pid 2>/dev/null || true; rm -rf "$root"' EXIT
for _ in $(seq 1 100); do
    "$root/services/bin/python" -c "import httpx, sys; httpx.get(sys.argv[1], timeout=1)" \
        "http://127.0.0.1:$port/docs" > /dev/null 2>&1 && break
    sleep 0.2
done
echo "+ [services] amp-tools conformance against amp-tools sandbox on port $port"
"$root/services/bin/amp-tools" conformance --cp "http://127.0.0.1:$port" \
    --merchant "http://127.0.0.1:$port/merchants/SUNNY-TOURS" --aplus-jwk "http://127.0.0.1:$port/network/keys" \
    > "$root/conformance.log" 2>&1 || { cat "$root/conformance.log" "$root/sandbox.log"; echo "wheel: conformance failed"; exit 1; }
kill "$sandbox_pid"
echo "+ [services] import every public name"
"$root/services/bin/python" - <<'PY'
import importlib
import pkgutil

import amp_tools

count = 0
for info in pkgutil.walk_packages(amp_tools.__path__, "amp_tools."):
    if not info.ispkg:
        continue
    module = importlib.import_module(info.name)
    for name in getattr(module, "__all__", ()):
        getattr(module, name)
        count += 1
for name in amp_tools.__all__:
    getattr(amp_tools, name)
    count += 1
for adapter in ("amp_agent_framework", "amp_examples", "amp_tools.mcp", "amp_tools.server"):
    module = importlib.import_module(adapter)
    for name in getattr(module, "__all__", ()):
        getattr(module, name)
        count += 1
print(f"imported {count} public names")
PY
echo "wheel check passed in $(( $(date +%s) - start ))s"
