#!/bin/sh
# bench/serve/run.sh: serving benchmark, `akdriver serve` (agentkit.h's built-in POSIX server)
# against the Genkit JS 1.42.0 reference server (tests/interop/genkit_server.cjs, needs
# `cd tests/interop && npm ci`), both started here on 127.0.0.1 and stopped by PID.
# bench/serve/load.c drives each in turn: CLIENTS concurrent keep-alive clients (default 64)
# looping over streamed turns for DURATION seconds (default 30) after WARMUP seconds
# (default 2, not measured), STORE_CLIENTS of them (default 16) on storeAgent chaining
# snapshots (a new conversation every CHAIN turns, default 10), the rest on chatAgent; a
# health prober on GET /healthz every PROBE_MS (default 100); then every snapshot is read
# back. Prints both sides, the ratios and the goals (>= 10x Genkit's throughput at a lower
# p99). Exits non-zero when a server does not start or a run fails verification (a failed
# turn or a lost snapshot), never for a missed goal.
cd "$(dirname "$0")/../.." || exit 1
CLIENTS=${CLIENTS:-64}
STORE_CLIENTS=${STORE_CLIENTS:-16}
DURATION=${DURATION:-30}
WARMUP=${WARMUP:-2}
CHAIN=${CHAIN:-10}
PROBE_MS=${PROBE_MS:-100}

mkdir -p build/bench
make -s agentkit.h build/akdriver || exit 1
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE bench/serve/load.c -o build/bench/serve_load -lm || exit 1

. bench/common.sh

# start NAME COMMAND...: runs a server in the background, waits for "listening <port>".
start() {
  name=$1; shift
  : > "$tmp/$name.log"
  "$@" > "$tmp/$name.log" 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 150 ]; do
    port=$(awk '/^listening/{print $2; exit}' "$tmp/$name.log")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  echo "$name did not start:"; cat "$tmp/$name.log"; stop_server; return 1
}

# measure NAME COMMAND...: one server under load; the figures go to $tmp/NAME.out.
measure() {
  name=$1; shift
  start "$name" "$@" || return 1
  echo "$name: $CLIENTS clients ($STORE_CLIENTS on storeAgent), ${WARMUP}s warm-up + ${DURATION}s, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  build/bench/serve_load --port "$port" --server-pid "$pid" --clients "$CLIENTS" --store-clients "$STORE_CLIENTS" \
    --seconds "$DURATION" --warmup "$WARMUP" --chain "$CHAIN" --probe-ms "$PROBE_MS" > "$tmp/$name.out" 2> "$tmp/$name.err"
  rc=$?
  sed "s/^/$name: /" "$tmp/$name.err"
  kill -0 "$pid" 2>/dev/null || { echo "$name: the server died during the run"; rc=1; }
  stop_server
  [ $rc -eq 0 ] || echo "$name: FAILED verification (load exit $rc)"
  return $rc
}

status=0
measure agentkit build/akdriver serve --port 0 || status=1
if [ -d tests/interop/node_modules/genkit ]; then
  measure genkit node tests/interop/genkit_server.cjs --port 0 || status=1
else
  echo "genkit: tests/interop/node_modules is missing: run (cd tests/interop && npm ci)"
  status=1
fi
[ -s "$tmp/agentkit.out" ] || exit 1
[ -s "$tmp/genkit.out" ] || : > "$tmp/genkit.out"
echo

awk -v dur="$DURATION" '
  FNR == 1 { side++ }
  { v[side, $1] = $2 }
  function get(s, k) { return (s, k) in v ? v[s, k] : "n/a" }
  function row(label, k) { printf "%-34s %14s %14s\n", label, get(1, k), get(2, k) }
  END {
    printf "%-34s %14s %14s\n", "", "agentkit.h", "Genkit JS"
    row("turns measured (" dur " s)", "requests")
    row("turns/s", "rps")
    row("turns/s, median second", "rps_median_1s")
    row("p50 latency per turn (ms)", "p50_ms")
    row("p99 latency per turn (ms)", "p99_ms")
    row("max latency per turn (ms)", "max_ms")
    row("failed turns", "failed")
    row("turns per chat client (min..max)", "chat_client_turns")
    row("turns per store client (min..max)", "store_client_turns")
    row("health probes", "health_probes")
    row("health failures", "health_failures")
    row("health max latency (ms)", "health_max_ms")
    row("snapshots read back", "snapshots")
    row("  completed, right history", "verified")
    row("  lost or wrong", "verify_failed")
    row("server CPU per turn (us)", "server_cpu_us_per_turn")
    row("server RSS at the end (KiB)", "server_rss_kb")
    row("load generator CPU (s)", "load_cpu_s")
    if (get(2, "rps") == "n/a" || get(2, "rps") + 0 <= 0) { print "\nno Genkit JS figures: no ratios"; exit }
    tput = v[1, "rps"] / v[2, "rps"]
    p99 = v[1, "p99_ms"] > 0 ? v[2, "p99_ms"] / v[1, "p99_ms"] : 0
    printf "\nthroughput ratio (agentkit / Genkit): %.1fx\n", tput
    printf "p99 ratio (Genkit / agentkit):        %.1fx\n", p99
    printf "goal >= 10x throughput at a lower p99: %s\n", (tput >= 10 && p99 > 1) ? "met" : "MISSED"
  }' "$tmp/agentkit.out" "$tmp/genkit.out"
exit $status
