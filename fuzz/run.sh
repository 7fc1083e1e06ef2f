#!/bin/sh
# fuzz/run.sh [SECONDS] - builds every libFuzzer target fuzz/fuzz_*.c and runs each for
# SECONDS (default 60) on its seed corpus fuzz/corpus/<name>/ and dictionary fuzz/<name>.dict,
# $AK_FUZZ_JOBS targets at a time (default 2: the CI machine has two cores).
#
# `make fuzz` and `make check` (tests/check_fuzz.sh) both run this script.
#
# The library is compiled once (clang, ASan + UBSan, coverage for libFuzzer, aborting on
# the first report) into build/fuzz/agentkit.o. Each target defines AGENTKIT_IMPLEMENTATION
# so it also builds alone, but here it is compiled with AGENTKIT_IMPLEMENTATION_INCLUDED
# already set, so it links against that object instead of compiling the header again.
#
# Inputs a run adds to the corpus go to build/fuzz/corpus/<name>/ (kept between runs); a
# crash, leak, timeout (an input running over 10 s: a hang) or memory blow-up stops the
# target and saves the input as build/fuzz/artifacts/<name>-<kind>-<hash>. The seed corpus
# is replayed first on every run, so inputs of past findings kept there (regress_*) are
# regression tests.
#
# Prints one line per target and a total; writes the same figures, one target per line
# ("name executions seconds findings"), to build/fuzz/summary.txt for
# tests/reliability_report.sh. Exits 1 when a target failed to build or found something.
# $AK_FUZZ_TARGETS (names, space-separated) restricts the run to those targets;
# $AK_FUZZ_BUILD (default build/fuzz) is where everything goes.
secs=${1:-60}
jobs=${AK_FUZZ_JOBS:-2}
cd "$(dirname "$0")/.." || exit 1
out=${AK_FUZZ_BUILD:-build/fuzz}
CFLAGS_FUZZ="-std=c99 -g -O1 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all"

command -v clang >/dev/null || { echo "clang is required for the fuzz targets"; exit 1; }
make -s agentkit.h || exit 1
mkdir -p "$out/artifacts" "$out/corpus" "$out/bin"

# The implementation, once.
lib=$out/agentkit.o
if [ ! -f "$lib" ] || [ agentkit.h -nt "$lib" ] || [ fuzz/run.sh -nt "$lib" ]; then
  printf '#define AGENTKIT_IMPLEMENTATION\n#include "agentkit.h"\n' > "$out/agentkit_impl.c"
  # shellcheck disable=SC2086
  clang $CFLAGS_FUZZ -fsanitize=fuzzer-no-link -I. -c "$out/agentkit_impl.c" -o "$lib" ||
    { echo "agentkit.h: fuzz build failed"; exit 1; }
fi

if [ -n "${AK_FUZZ_TARGETS:-}" ]; then
  targets=$AK_FUZZ_TARGETS
else
  targets=$(for src in fuzz/fuzz_*.c; do [ -f "$src" ] && basename "$src" .c; done)
fi

build_target() { # name -> 0 when build/fuzz/bin/<name> is fresh
  # shellcheck disable=SC2086
  clang $CFLAGS_FUZZ -fsanitize=fuzzer -DAGENTKIT_IMPLEMENTATION_INCLUDED -I. "fuzz/$1.c" "$lib" \
    -o "$out/bin/$1" -lm > "$out/$1.build.log" 2>&1
}

run_target() { # name -> writes build/fuzz/<name>.result: "name executions seconds findings"
  name=$1
  log=$out/$name.log
  if ! build_target "$name"; then
    echo "$name 0 0 build" > "$out/$name.result"
    return
  fi
  mkdir -p "$out/corpus/$name"
  rm -f "$out/artifacts/$name"-*
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  seeds=""
  [ -d "fuzz/corpus/$name" ] && seeds="fuzz/corpus/$name"
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$out/bin/$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/$name-" $dict "$out/corpus/$name" $seeds > "$log" 2>&1
  elapsed=$(( $(date +%s) - start ))
  runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
  findings=$(find "$out/artifacts" -name "$name-*" | wc -l | tr -d ' ')
  echo "$name ${runs:-0} $elapsed $findings" > "$out/$name.result"
}

report() { # name -> prints its line; returns 1 on a failure
  read -r name runs elapsed findings < "$out/$1.result"
  if [ "$findings" = build ]; then
    echo "$name: BUILD FAILED"
    sed 's/^/    /' "$out/$name.build.log" | head -20
    return 1
  fi
  if [ "$findings" -ne 0 ] || ! grep -q '^Done [0-9]* runs' "$out/$name.log"; then
    echo "$name: FINDING after $runs executions: $(find "$out/artifacts" -name "$name-*" | head -1) (log: $out/$name.log)"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written|^ *#[0-9]+ ' "$out/$name.log" | head -24 | sed 's/^/    /'
    # CI keeps only what is printed: the input itself, so the finding can be replayed here.
    artifact=$(find "$out/artifacts" -name "$name-*" | head -1)
    if [ -n "$artifact" ] && [ "$(wc -c < "$artifact")" -le 4096 ]; then
      echo "    input (base64; replay: base64 -d > x && $out/bin/$name x):"
      base64 "$artifact" | sed 's/^/    /'
    fi
    return 1
  fi
  echo "$name: $runs executions in ${elapsed}s, no findings"
}

rc=0
: > "$out/summary.txt"
set -- $targets
while [ $# -gt 0 ]; do
  batch=""
  n=0
  while [ $# -gt 0 ] && [ $n -lt "$jobs" ]; do
    rm -f "$out/$1.result"
    run_target "$1" &
    batch="$batch $1"
    n=$((n + 1))
    shift
  done
  wait
  for name in $batch; do
    report "$name" || rc=1
    cat "$out/$name.result" >> "$out/summary.txt"
  done
done
awk '{ runs += $2; if ($4 != "0") bad++ } END {
  printf "total: %d executions, %d targets, %d with findings or build failures\n", runs, NR, bad }' "$out/summary.txt"
exit $rc
