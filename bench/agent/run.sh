#!/bin/sh
# bench/agent/run.sh: agentkit.h (agent_bench.c, built -O2 against agentkit.h) and Genkit JS
# 1.42.0 (genkit_bench.cjs, needs `cd tests/interop && npm ci`) running the same scripted
# agents in process, printed side by side: microseconds per turn, bytes per live session,
# the ratio Genkit / agentkit and each side's turn-50 / turn-1 ratio, checked against the
# goals. QUICK=1 runs Genkit's --quick mode (noisier, for smoke tests); SESSIONS=N changes
# agentkit's session count for the memory figure (default 1000, as Genkit's).
# Exits non-zero only when a side fails to build or run, never for a missed goal.
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build/bench
make -s agentkit.h || exit 1
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE bench/agent/agent_bench.c -o build/bench/agent_bench -lm || exit 1

ak=$(build/bench/agent_bench "${SESSIONS:-1000}") || { echo "agent_bench failed"; exit 1; }
js=$(node bench/agent/genkit_bench.cjs ${QUICK:+--quick}) || { echo "genkit_bench.cjs failed (see above)"; exit 1; }
echo "agentkit:  $ak"
echo "Genkit JS: $js"
echo

# num JSON KEY [OBJECT_KEY]: the number at "KEY": in JSON, inside "OBJECT_KEY":{...} if given.
num() {
  scope=$1
  [ -n "$3" ] && scope=$(printf '%s\n' "$1" | sed -n "s/.*\"$3\":{\([^}]*\)}.*/\1/p")
  printf '%s\n' "$scope" | sed -n "s/.*\"$2\":\([0-9.eE+-]*\).*/\1/p"
}

{
  echo "text $(num "$ak" singleTurnUs) $(num "$js" text_turn_us)"
  echo "tool $(num "$ak" toolTurnUs) $(num "$js" tool_turn_us)"
  for n in 1 10 25 50; do
    echo "turn$n $(num "$ak" "$n" serverTurnUs) $(num "$js" "$n" server_turn_us)"
  done
  echo "bytes $(num "$ak" bytesPerSession) $(num "$js" session_bytes)"
} | awk '
  function label(k) {
    if (k == "text") return "us per single-text turn (client-managed)"
    if (k == "tool") return "us per tool turn (2 model calls + 1 tool)"
    if (k == "bytes") return "bytes per live session (1,000 x 10 turns)"
    return "us per turn " substr(k, 5) " (server-managed, in-memory)"
  }
  function verdict(ok) { return ok ? "met" : "MISSED" }
  NF != 3 || $2 <= 0 || $3 <= 0 { print "cannot read the figures of " $1; bad = 1; next }
  {
    v[$1, "ak"] = $2; v[$1, "js"] = $3
    fmt = $1 == "bytes" ? "%-46s %12.0f %12.0f %9.1fx" : "%-46s %12.2f %12.2f %9.1fx"
    rows[++n] = sprintf(fmt, label($1), $2, $3, $3 / $2)
    r = $3 / $2
    if ($1 == "bytes") mem = r
    else if (!("min" in best) || r < best["min"]) best["min"] = r
  }
  END {
    if (bad) exit 1
    printf "%-46s %12s %12s %10s\n", "", "agentkit.h", "Genkit JS", "Genkit/ak"
    for (i = 1; i <= n; i++) print rows[i]
    ak50 = v["turn50", "ak"] / v["turn1", "ak"]; js50 = v["turn50", "js"] / v["turn1", "js"]
    printf "%-46s %12.2f %12.2f\n", "turn 50 / turn 1", ak50, js50
    print ""
    printf "goal >= 100x faster per turn:        %s (slowest ratio %.0fx)\n", verdict(best["min"] >= 100), best["min"]
    printf "goal >= 20x less memory per session: %s (%.1fx)\n", verdict(mem >= 20), mem
    printf "goal turn 50 <= 2x turn 1:           %s (agentkit %.2fx, Genkit JS %.2fx)\n", verdict(ak50 <= 2), ak50, js50
  }' || exit 1
