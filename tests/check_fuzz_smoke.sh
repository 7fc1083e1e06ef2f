#!/bin/sh
# check_fuzz_smoke.sh: builds the JSON libFuzzer targets (parse, roundtrip, pointer, patch,
# schema) the way fuzz/run.sh does and runs each for 5 seconds on its seed corpus, so
# `make check` proves they build and find nothing quickly. `make fuzz` runs them longer.
set -u
cd "$(dirname "$0")/.."
make -s agentkit.h || exit 1
out=build/fuzz-smoke
mkdir -p "$out"
rc=0
for t in parse roundtrip pointer patch schema; do
  name=fuzz_json_$t
  clang -std=c99 -g -O1 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=all -I. "fuzz/$name.c" -o "$out/$name" -lm || { echo "$name: build failed"; rc=1; continue; }
  rm -rf "$out/corpus-$name"
  mkdir -p "$out/corpus-$name"
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  if "$out/$name" -max_total_time=5 -print_final_stats=1 -artifact_prefix="$out/" $dict \
       "$out/corpus-$name" "fuzz/corpus/$name" > "$out/$name.log" 2>&1; then
    echo "$name: $(awk '/^stat::number_of_executed_units/ {print $2}' "$out/$name.log") executions in 5 s, no findings"
  else
    echo "$name: FAILED (see $out/$name.log)"
    grep -E 'ERROR|runtime error|Test unit written' "$out/$name.log" | head -5
    rc=1
  fi
done
exit $rc
