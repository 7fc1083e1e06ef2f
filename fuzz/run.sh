#!/bin/sh
# fuzz/run.sh SECONDS: builds every libFuzzer target fuzz/fuzz_*.c with clang
# (ASan + UBSan, aborting on the first report) and runs each for SECONDS on its seed corpus
# fuzz/corpus/<name>/ (+ dictionary fuzz/<name>.dict if present). Prints executions per target.
secs=${1:-30}
cd "$(dirname "$0")/.."
make -s agentkit.h || exit 1
mkdir -p build/fuzz
rc=0
total=0
for src in fuzz/fuzz_*.c; do
  [ -f "$src" ] || continue
  name=$(basename "$src" .c)
  bin=build/fuzz/$name
  clang -std=c99 -g -O1 -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I. "$src" -o "$bin" -lm || { echo "$name: build failed"; rc=1; continue; }
  work=build/fuzz/corpus-$name
  mkdir -p "$work" build/fuzz/artifacts
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  seeds=""
  [ -d "fuzz/corpus/$name" ] && seeds="fuzz/corpus/$name"
  "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix=build/fuzz/artifacts/ $dict \
    "$work" $seeds > "build/fuzz/$name.log" 2>&1
  status=$?
  runs=$(grep -E '^stat::number_of_executed_units' "build/fuzz/$name.log" | awk '{print $2}')
  runs=${runs:-0}
  total=$((total + runs))
  if [ $status -ne 0 ]; then
    echo "$name: FAILED after $runs executions (see build/fuzz/$name.log)"
    grep -E 'ERROR|runtime error|Test unit written' "build/fuzz/$name.log" | head -5
    rc=1
  else
    echo "$name: $runs executions in ${secs}s, no findings"
  fi
done
echo "total executions: $total"
exit $rc
