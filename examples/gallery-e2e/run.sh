#!/usr/bin/env bash
# The web gallery of `imagegen serve` (`/`, `/generate`, `/images/…`, `/spend`) driven end
# to end in headless Debian Chromium by Playwright (playwright-core and axe-core, pinned in
# package-lock.json, installed with `npm ci`; Playwright never downloads a browser of its
# own: it runs /usr/bin/chromium, which this script installs from Debian's packages when it
# is missing). The gateway runs on its embedded simulator (no provider key) with a fresh
# ledger and image directory; test.mjs generates through the pages (also with a Kolbo
# moodboard, which leaves Kolbo's plans only) and the API, filters,
# reads the spend chart, deletes, runs axe-core on every page and writes screenshots to
# target/gallery-screenshots/. Fails (exit 1) when a tool is missing, the gateway does not
# start, or any check of test.mjs fails; never skips.
#
#   examples/gallery-e2e/run.sh                            # the checks
#   examples/gallery-e2e/run.sh --update-readme-screenshot # also copies the grid's
#                                                          # screenshot to docs/gallery.png
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

die() {
  echo "gallery-e2e: FAIL: $*" >&2
  exit 1
}

for arg in "$@"; do
  case "$arg" in
    --update-readme-screenshot) ;;
    *) die "unknown argument $arg (the only one is --update-readme-screenshot)" ;;
  esac
done

command -v node >/dev/null 2>&1 || die "node not found (install Node.js 20 or newer)"
command -v npm >/dev/null 2>&1 || die "npm not found"
node_major="$(node -p 'process.versions.node.split(".")[0]')" || die "node does not run"
[ "$node_major" -ge 20 ] 2>/dev/null || die "node $(node --version) is too old: Node.js 20 or newer"

chromium=/usr/bin/chromium
if [ ! -x "$chromium" ]; then
  echo "gallery-e2e: installing Debian's chromium (apt-get)" >&2
  command -v apt-get >/dev/null 2>&1 || die "$chromium is missing and there is no apt-get to install it"
  [ "$(id -u)" -eq 0 ] || die "$chromium is missing: install Debian's chromium package as root (apt-get install chromium)"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null ||
    die "apt-get install chromium failed"
  [ -x "$chromium" ] || die "apt-get installed chromium but $chromium is not there"
fi
"$chromium" --version >/dev/null 2>&1 || die "$chromium does not run"

# npm ci when node_modules is missing or older than the lock file (npm keeps its own copy
# of the lock in node_modules/.package-lock.json, rewritten by every install).
if [ ! -f "$here/node_modules/.package-lock.json" ] ||
  [ ! -f "$here/node_modules/playwright-core/package.json" ] ||
  [ ! -f "$here/node_modules/axe-core/axe.min.js" ] ||
  [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  echo "gallery-e2e: npm ci (playwright-core, axe-core; no browser download)" >&2
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci failed in $here"
fi

bin="${IMAGEGEN_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --quiet -p imagegen-cli) || die "cannot build imagegen"
  bin="$root/target/debug/imagegen"
fi
[ -x "$bin" ] || die "$bin is not an executable"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# No provider key: the gateway serves through its embedded simulator, on a fresh ledger.
unset KOLBO_API_KEY KOALA_API_KEY KOLBO_BASE_URL KOALA_BASE_URL KOALA_PLAN \
  KOLBO_CREDIT_USD KOALA_CREDIT_USD IMAGEGEN_DATABASE_URL IMAGEGEN_POLL_INTERVAL_MS
while IFS= read -r name; do
  unset "$name"
done < <(env | sed -n 's/^\(\(KOLBO\|KOALA\)_[A-Za-z0-9_]*\)=.*/\1/p')

: >"$work/serve.out"
(cd "$work" && exec "$bin" serve --listen 127.0.0.1:0 --db "$work/ledger.sqlite3" \
  --image-dir "$work/images" >"$work/serve.out" 2>"$work/serve.err") &
server_pid=$!
address=""
for _ in $(seq 1 300); do
  address="$(sed -n '1s/^listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/serve.out")"
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.err" >&2; die "imagegen serve exited"; }
  sleep 0.1
done
[ -n "$address" ] || { cat "$work/serve.err" >&2; die "imagegen serve printed no address in 30 s"; }
echo "gallery-e2e: imagegen serve on $address (simulator, ledger in $work)" >&2

GALLERY_URL="$address" CHROMIUM="$chromium" SCREENSHOT_DIR="$root/target/gallery-screenshots" \
  README_SCREENSHOT="$root/docs/gallery.png" \
  timeout 240 node "$here/test.mjs" "$@"
status=$?
if [ "$status" -ne 0 ]; then
  echo "--- imagegen serve stderr ---" >&2
  tail -n 100 "$work/serve.err" >&2
  [ "$status" -eq 124 ] && die "test.mjs ran out of time (240 s)"
  die "test.mjs failed ($status)"
fi
