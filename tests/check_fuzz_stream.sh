#!/bin/sh
# check_fuzz_stream.sh: builds the stream fuzz targets (SSE, NDJSON) with libFuzzer, ASan and
# UBSan and runs each for 5 s on its seed corpus and dictionary. Fails on a build error
# or any finding. Longer runs: make fuzz (fuzz/run.sh).
cd "$(dirname "$0")/.." || exit 1
secs=${AK_FUZZ_SECONDS:-5}
out=build/fuzz
mkdir -p "$out/artifacts"
rc=0
for name in fuzz_sse fuzz_ndjson; do
  bin=$out/$name
  clang -std=c99 -g -O1 -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I. "fuzz/$name.c" -o "$bin" -lm || { echo "$name: build failed"; rc=1; continue; }
  work=$(mktemp -d)
  "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
    -dict="fuzz/$name.dict" "$work" "fuzz/corpus/$name" > "$out/$name.check.log" 2>&1
  status=$?
  rm -rf "$work"
  runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$out/$name.check.log")
  if [ $status -ne 0 ]; then
    echo "$name: FAILED after ${runs:-0} executions (see $out/$name.check.log)"
    grep -E 'ERROR|runtime error|Test unit written' "$out/$name.check.log" | head -5
    rc=1
  else
    echo "$name: ${runs:-0} executions in ${secs}s, no findings"
  fi
done
exit $rc
