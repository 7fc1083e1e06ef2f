#!/bin/sh
# suite_interop.sh BUILD_DIR: interop with the real Genkit JS 1.42.0 (tests/interop, installed
# by `npm ci`): the official JS client against `akdriver serve` (both route prefixes), the
# golden transcripts of the JS reference server against `akdriver serve`, and the agentkit
# remote client against both servers. Every server is started here on 127.0.0.1 and stopped
# by PID. Prints one line per step and "N passed, N failed".
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
interop=$here/interop
pass=0
fail=0
pids=""
tmp=$(mktemp -d)
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT

step() { # name command... (output kept for failures)
  name=$1; shift
  if "$@" > "$tmp/out" 2>&1; then pass=$((pass + 1)); echo "ok   $name"
  else fail=$((fail + 1)); echo "FAIL $name"; tail -n 30 "$tmp/out" | sed 's/^/     /'; fi
}

# start NAME COMMAND...: runs a server in the background and waits for "listening <port>"
start() {
  name=$1; shift
  "$@" > "$tmp/$name.log" 2>&1 &
  pids="$pids $!"
  i=0
  while [ $i -lt 100 ]; do
    port=$(awk '/^listening/{print $2; exit}' "$tmp/$name.log")
    [ -n "$port" ] && { eval "${name}_port=$port"; return 0; }
    sleep 0.1; i=$((i + 1))
  done
  echo "$name did not start:"; cat "$tmp/$name.log"; return 1
}

if [ ! -d "$interop/node_modules/genkit" ]; then
  echo "FAIL tests/interop/node_modules is missing: run (cd tests/interop && npm ci)"
  echo "0 passed, 1 failed"
  exit 1
fi

start ak "$build/akdriver" serve --port 0 || { echo "0 passed, 1 failed"; exit 1; }
start js node "$interop/genkit_server.cjs" --port 0 || { echo "0 passed, 1 failed"; exit 1; }

step "official JS client -> akdriver serve (/api)" node "$interop/scenarios.cjs" --url "http://127.0.0.1:$ak_port" --prefix /api
step "official JS client -> akdriver serve (/agents)" node "$interop/scenarios.cjs" --url "http://127.0.0.1:$ak_port" --prefix /agents
step "official JS client -> Genkit JS server (the reference itself)" node "$interop/scenarios.cjs" --url "http://127.0.0.1:$js_port"
step "agentkit remote client -> akdriver serve" "$build/remote_scenarios" "http://127.0.0.1:$ak_port/api"
step "agentkit remote client -> Genkit JS server" "$build/remote_scenarios" "http://127.0.0.1:$js_port/api"

# Golden transcripts: byte for byte, except where Genkit 1.42.0 leaks internals we do not
# reproduce (its schema-validation errors embed the whole 20 KB JSON schema; a missing tool's
# error carries the full model request in details). Those must still differ only there.
transcripts() {
  node "$interop/transcripts.cjs" --url "http://127.0.0.1:$ak_port" --compare "$interop/golden" > "$tmp/tr" 2>&1
  unexpected=$(grep -E '^DIFF ' "$tmp/tr" | grep -v -E '^DIFF (missing_init_json|missing_init_stream|missing_data_json|tool_not_found_json):')
  oks=$(grep -c '^ok ' "$tmp/tr")
  [ -z "$unexpected" ] && [ "$oks" -ge 46 ] || { echo "$unexpected"; tail -n 3 "$tmp/tr"; return 1; }
}
step "golden transcripts of Genkit JS vs akdriver serve (46 byte-identical, 4 known)" transcripts

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
