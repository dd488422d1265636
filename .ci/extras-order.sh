#!/usr/bin/env bash
# Installing the framework extras one after another, in either order, must leave every demo
# working (pip does not re-resolve what an earlier install put there). For each order: a fresh
# venv, the README's first Quickstart install together with the first framework extra, then the
# second extra on its own, `pip check`, and the offline travel demo under every framework.
# Takes a while (two fresh environments): run it when dependencies or extras change.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
export AMP_TOOLS_HOME="$root/home"
unset AMP_TOOLS_MODEL AMP_TOOLS_LEDGER_URL OPENAI_API_KEY OPENAI_BASE_URL

run_order() {
    local name=$1 first=$2 second=$3
    local venv="$root/$name"
    echo "+ extras order $name: .[langchain,sandbox,$first] then .[$second]"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -e ".[langchain,sandbox,$first]"
    "$venv/bin/pip" install -q -e ".[$second]"
    "$venv/bin/pip" check
    for framework in langchain crewai autogen; do
        echo "+ [$name] amp-tools demo travel --framework $framework --scripted"
        "$venv/bin/amp-tools" demo travel --framework "$framework" --scripted --approve yes > "$root/$name-$framework.log" 2>&1 \
            || { cat "$root/$name-$framework.log"; echo "demo under $framework failed after installing $first then $second"; exit 1; }
        grep -q "audit chain ok" "$root/$name-$framework.log" \
            || { cat "$root/$name-$framework.log"; echo "demo under $framework did not finish"; exit 1; }
    done
}

start=$(date +%s)
run_order crewai-then-autogen crewai autogen
run_order autogen-then-crewai autogen crewai
echo "extras order check passed in $(( $(date +%s) - start ))s"
