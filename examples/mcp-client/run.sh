#!/usr/bin/env bash
# The official `mcp` Python SDK (pinned in requirements.txt, installed into a local
# virtual environment) driving `imagegen mcp` over stdio, against `imagegen sim` at
# realistic speed started here (so a tiny --wait-limit is passed for real). Fails (exit 1)
# when a tool is missing, the simulator does not start, or any check of test_mcp.py
# fails; never skips.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

die() {
  echo "mcp-client: FAIL: $*" >&2
  exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 not found"

venv="$here/.venv"
if ! "$venv/bin/python" -c 'import mcp' >/dev/null 2>&1; then
  echo "mcp-client: installing the mcp package into $venv (requirements.txt)" >&2
  python3 -m venv "$venv" || die "cannot create a Python venv in $venv"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" ||
    die "cannot install mcp (requirements.txt) into $venv"
fi

bin="${IMAGEGEN_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p imagegen-cli) || die "cannot build imagegen"
  bin="$root/target/debug/imagegen"
fi
# The servers run in a folder of their own: the binary's path must not be relative.
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac

work="$(mktemp -d)"
sim_pid=""
cleanup() {
  [ -n "$sim_pid" ] && kill -TERM "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

unset KOLBO_API_KEY KOALA_API_KEY KOLBO_BASE_URL KOALA_BASE_URL IMAGEGEN_DATABASE_URL
"$bin" sim --json --speed 1 >"$work/sim.json" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 1 300); do
  [ -s "$work/sim.json" ] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.err" >&2; die "imagegen sim exited"; }
  sleep 0.1
done
[ -s "$work/sim.json" ] || { cat "$work/sim.err" >&2; die "imagegen sim printed nothing"; }
exports="$("$venv/bin/python" -c '
import json, sys
for k, v in json.load(open(sys.argv[1])).items():
    print(f"export {k.upper()}={v}")
' "$work/sim.json")" || die "cannot read the simulator's URLs and keys"
eval "$exports"
export IMAGEGEN_POLL_INTERVAL_MS=50

IMAGEGEN_BIN="$bin" IMAGEGEN_WORK="$work" timeout 300 "$venv/bin/python" "$here/test_mcp.py"
status=$?
if [ "$status" -ne 0 ]; then
  echo "--- imagegen mcp stderr ---" >&2
  cat "$work/mcp.err" >&2 2>/dev/null
  die "test_mcp.py failed ($status)"
fi
