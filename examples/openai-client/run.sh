#!/usr/bin/env bash
# The official `openai` Python client (pinned in requirements.txt, installed into a local
# virtual environment) against `imagegen serve` running on its embedded simulator, with a
# fresh ledger and two gateway keys. test_gateway.py starts more gateways itself (the same
# binary): one with `--max-in-flight-per-key 1`, and some whose KoalaImages is a fake
# provider on loopback that fails every request (503, 429, 403, 402, a dropped connection),
# so each error class of the client is checked. Fails (exit 1) when a tool is missing, a
# gateway does not start, or any check of test_gateway.py fails; never skips.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

die() {
  echo "openai-client: FAIL: $*" >&2
  exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 not found"

venv="$here/.venv"
if ! "$venv/bin/python" -c 'import openai' >/dev/null 2>&1; then
  echo "openai-client: installing the openai package into $venv (requirements.txt)" >&2
  python3 -m venv "$venv" || die "cannot create a Python venv in $venv"
  "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" ||
    die "cannot install openai (requirements.txt) into $venv"
fi

bin="${IMAGEGEN_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p imagegen-cli) || die "cannot build imagegen"
  bin="$root/target/debug/imagegen"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill -TERM "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# No provider key: the gateway serves through its embedded simulator.
unset KOLBO_API_KEY KOALA_API_KEY KOLBO_BASE_URL KOALA_BASE_URL
db="$work/ledger.sqlite3"
key="$("$bin" --db "$db" keys create --name ci 2>/dev/null)" || die "cannot create a gateway key"
tight="$("$bin" --db "$db" keys create --name tight --budget 1 --period total 2>/dev/null)" ||
  die "cannot create the tight key"

(cd "$work" && exec "$bin" --db "$db" serve --listen 127.0.0.1:0 >"$work/serve.out" 2>"$work/serve.err") &
server_pid=$!
address=""
for _ in $(seq 1 300); do
  address="$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/serve.out" | head -n 1)"
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "imagegen serve exited"; }
  sleep 0.1
done
[ -n "$address" ] || { cat "$work/serve.err" >&2; die "imagegen serve printed no address"; }

IMAGEGEN_GATEWAY_URL="$address/v1" IMAGEGEN_KEY="$key" IMAGEGEN_TIGHT_KEY="$tight" \
  IMAGEGEN_BIN="$bin" IMAGEGEN_WORK="$work" \
  timeout 180 "$venv/bin/python" "$here/test_gateway.py"
status=$?
if [ "$status" -ne 0 ]; then
  echo "--- imagegen serve stderr ---" >&2
  cat "$work/serve.err" >&2
  die "test_gateway.py failed ($status)"
fi
