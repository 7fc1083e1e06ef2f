#!/bin/sh
# suite_sse.sh BUILD_DIR: the `akdriver sse` command: output format, the id/retry rules it
# documents, exit codes, and the same output for every --chunk size.
build=${1:-build}
drv=$build/akdriver
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name expected actual
  if [ "$2" = "$3" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); printf 'FAIL %s\n  want: %s\n  got:  %s\n' "$1" "$2" "$3"; fi
}

printf 'retry: 5\nid: 7\ndata: {"a":1}\n\n: ping\r\nevent: x\r\ndata: l1\r\ndata: l2\377\r\n\r\nid\ndata:\n\ndata: cut' > "$tmp/in"
# POSIX printf knows octal escapes only: \377 is an invalid byte, \357\277\275 is U+FFFD
want=$(printf '%s\n%s\357\277\275%s\n%s' '{"event":"message","data":"{\"a\":1}","id":"7","retry":5}' \
  '{"event":"x","data":"l1\nl2' '","id":"7"}' '{"event":"message","data":""}')
for chunk in "" 1 2 3 7 64; do
  got=$("$drv" sse ${chunk:+--chunk $chunk} < "$tmp/in"); rc=$?
  check "events, chunk '${chunk:-all}'" "$want" "$got"
  check "exit 0, chunk '${chunk:-all}'" 0 "$rc"
done

got=$(printf 'data: \000x\n\n' | "$drv" sse)
check "NUL in data is escaped" '{"event":"message","data":"\u0000x"}' "$got"

got=$(printf '' | "$drv" sse); rc=$?
check "empty stream: no output" "" "$got"
check "empty stream: exit 0" 0 "$rc"

"$drv" sse --chunk 0 < /dev/null > /dev/null 2>&1
check "bad --chunk: exit 2" 2 "$?"
"$drv" sse extra < /dev/null > /dev/null 2>&1
check "extra argument: exit 2" 2 "$?"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
