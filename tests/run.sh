#!/bin/sh
# run.sh BUILD_DIR: runs every test binary and suite, prints failures, and ends with the
# total "N passed, N failed". $AK_RUNNER (e.g. "valgrind -q ...") prefixes each binary.
build=${1:-build}
total_pass=0
total_fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

run_suite() { # name command...
  name=$1; shift
  start=$(date +%s)
  "$@" >"$out" 2>&1
  rc=$?
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
  if [ -n "$summary" ]; then
    p=${summary%% passed*}
    f=${summary#*passed, }; f=${f%% failed*}
  else
    p=0; f=1
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
  secs=$(( $(date +%s) - start ))
  if [ "$f" -ne 0 ]; then
    echo "== $name: $p passed, $f failed (exit $rc, ${secs}s)"
    tail -n 60 "$out"
  else
    echo "   $name: $p passed (${secs}s)"
  fi
}

for t in "$build"/test_*; do
  [ -x "$t" ] || continue
  run_suite "$(basename "$t")" ${AK_RUNNER:-} "$t"
done
for s in tests/suite_*.sh; do
  [ -f "$s" ] || continue
  run_suite "$(basename "$s" .sh)" sh "$s" "$build"
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
