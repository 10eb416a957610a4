#!/usr/bin/env bash
# Runs the providers' own documented example clients (transcribed in this folder, see
# README.md) against `imagegen sim`, the simulator of both APIs. Fails (exit 1) when a tool
# is missing, the simulator does not start, or any example fails, hangs or prints no image
# URL; never skips.
#
# Environment (all optional):
#   IMAGEGEN_BIN             an `imagegen` binary to use (default: built with cargo)
#   DOCS_CLIENTS_SPEED       the simulator's speed factor (default 0.2: Kolbo images in seconds)
#   DOCS_CLIENTS_TIMEOUT     seconds each example may take before it counts as hung (default 60)
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
speed="${DOCS_CLIENTS_SPEED:-0.2}"
limit="${DOCS_CLIENTS_TIMEOUT:-60}"

die() {
  echo "docs-clients: FAIL: $*" >&2
  exit 1
}

# --- Tools: a missing one fails the run. -----------------------------------------------
command -v timeout >/dev/null 2>&1 || die "timeout (coreutils) not found"
command -v python3 >/dev/null 2>&1 || die "python3 not found: the Kolbo Python examples need it"
command -v node >/dev/null 2>&1 || die "node not found: the JavaScript examples need Node.js 18 or newer"
node_major="$(node -p 'process.versions.node.split(".")[0]')" || die "node does not run"
[ "$node_major" -ge 18 ] || die "node $(node --version) has no built-in fetch: Node.js 18 or newer is needed"

# The Python examples use `requests`: the machine's, or else a pinned copy in a local venv.
python=python3
if ! python3 -c 'import requests' >/dev/null 2>&1; then
  venv="$here/.venv"
  if ! "$venv/bin/python" -c 'import requests' >/dev/null 2>&1; then
    echo "docs-clients: installing requests into $venv (requirements.txt)" >&2
    python3 -m venv "$venv" || die "cannot create a Python venv in $venv"
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" ||
      die "cannot install requests (requirements.txt) into $venv"
  fi
  python="$venv/bin/python"
fi

# --- The simulator. ----------------------------------------------------------------------
if [ -n "${IMAGEGEN_BIN:-}" ]; then
  bin="$IMAGEGEN_BIN"
else
  (cd "$root" && cargo build --quiet --locked -p imagegen-cli) || die "cannot build imagegen-cli"
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/imagegen"
fi
[ -x "$bin" ] || die "no imagegen binary at $bin"

work="$(mktemp -d)"
sim_pid=""
stop_sim() {
  if [ -n "$sim_pid" ] && kill -0 "$sim_pid" 2>/dev/null; then
    kill -INT "$sim_pid" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$sim_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$sim_pid" 2>/dev/null
    wait "$sim_pid" 2>/dev/null
  fi
  sim_pid=""
}
trap 'stop_sim; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Not `--quiet`: the four KEY=value lines are the environment to export.
"$bin" sim --speed "$speed" >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 1 300); do
  [ "$(grep -c '^[A-Z_]*=' "$work/sim.out" 2>/dev/null)" -ge 4 ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
for name in KOLBO_BASE_URL KOALA_BASE_URL KOLBO_API_KEY KOALA_API_KEY; do
  value="$(grep "^$name=" "$work/sim.out" | head -n 1 | cut -d= -f2-)"
  [ -n "$value" ] || {
    cat "$work/sim.err" >&2
    die "the simulator did not print $name"
  }
  export "$name=$value"
done
echo "docs-clients: simulator at $KOLBO_BASE_URL (speed $speed)"

# --- The examples. -----------------------------------------------------------------------
failures=0
passed=0

# check_image URL: the URL serves an image (PNG or JPEG).
check_image() {
  "$python" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r:
    head = r.read(4)
    ok = r.status == 200 and (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8"))
sys.exit(0 if ok else 1)
PY
}

# run NAME EXPECT COMMAND...: runs one example; EXPECT is a regex its output must match
# ("" for none); the first http URL in a matching line must serve an image.
run() {
  local name="$1" expect="$2"
  shift 2
  local log="$work/$name.log" start=$SECONDS rc=0
  (cd "$here" && timeout "$limit" "$@") >"$log" 2>&1 || rc=$?
  local took=$((SECONDS - start)) why=""
  if [ "$rc" -eq 124 ]; then
    why="did not exit within ${limit}s"
  elif [ "$rc" -ne 0 ]; then
    why="exited $rc"
  elif [ -n "$expect" ]; then
    local line url
    line="$(grep -E "$expect" "$log" | head -n 1)"
    url="$(printf '%s' "$line" | grep -oE "https?://[^'\" ,]+" | head -n 1)"
    if [ -z "$line" ]; then
      why="printed no line matching /$expect/"
    elif [ -z "$url" ]; then
      why="printed no image URL"
    elif ! check_image "$url" >>"$log" 2>&1; then
      why="its image URL $url does not serve an image"
    fi
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1))
    echo "docs-clients: ok   $name (${took}s)"
  else
    failures=$((failures + 1))
    echo "docs-clients: FAIL $name: $why (${took}s); its output:" >&2
    sed 's/^/    /' "$log" >&2
  fi
}

run kolbo_generate_image.js 'Image URLs:' node kolbo_generate_image.js
run kolbo_specific_model.js 'Image URLs:' node kolbo_specific_model.js
run kolbo_generate_image.py 'Image URLs:' "$python" kolbo_generate_image.py
run kolbo_specific_model.py 'Image URLs:' "$python" kolbo_specific_model.py
run koala_example_request.js '' node koala_example_request.js
run koala_complete_example.js '^Image 2: ' node koala_complete_example.js

stop_sim
if [ "$failures" -ne 0 ]; then
  echo "docs-clients: FAIL: $failures of $((failures + passed)) example(s) failed" >&2
  exit 1
fi
echo "docs-clients: all $passed examples ran against the simulator"
