#!/bin/sh
# suite_json_patch.sh BUILD_DIR: the akdriver json-patch contract (DESIGN.md): ok -> exit 0
# and the result on stdout; error -> exit 1 and one line on stderr.
drv=${1:-build}/akdriver
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

check() { # name expected-exit expected-stdout expected-stderr-substring doc patch
  printf '%s' "$5" > "$tmp/doc.json"
  printf '%s' "$6" > "$tmp/patch.json"
  "$drv" json-patch "$tmp/doc.json" "$tmp/patch.json" > "$tmp/out" 2> "$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  ok=1
  [ "$rc" -eq "$2" ] || ok=0
  [ "$out" = "$3" ] || ok=0
  if [ -z "$4" ]; then
    [ -s "$tmp/err" ] && ok=0
  else
    [ "$(wc -l < "$tmp/err")" -eq 1 ] && grep -qF -- "$4" "$tmp/err" || ok=0
  fi
  if [ "$ok" -eq 1 ]; then
    pass=$((pass + 1))
  else
    echo "FAIL $1: exit $rc, stdout '$out', stderr '$(cat "$tmp/err")'"
    fail=$((fail + 1))
  fi
}

check "applies" 0 '{"a":[1,2,3],"b":{"c":true}}' "" '{"a":[1,2]}' '[{"op":"add","path":"/a/-","value":3},{"op":"add","path":"/b","value":{"c":true}}]'
check "empty patch" 0 '[1]' "" '[1]' '[]'
check "missing target" 1 '' 'operation 1 (remove): path /x does not exist' '{}' '[{"op":"add","path":"/a","value":1},{"op":"remove","path":"/x"}]'
check "failed test" 1 '' 'operation 0 (test): the value at /a differs' '{"a":1}' '[{"op":"test","path":"/a","value":2}]'
check "bad patch JSON" 1 '' 'patch.json: ' '{}' '[{"op":'
check "bad document JSON" 1 '' 'doc.json: ' '{' '[]'
check "patch not an array" 1 '' 'must be an array' '{}' '{"op":"add"}'
"$drv" json-patch "$tmp/none.json" "$tmp/none.json" > /dev/null 2>&1
if [ $? -ne 0 ]; then pass=$((pass + 1)); else echo "FAIL unreadable file accepted"; fail=$((fail + 1)); fi
echo "$pass passed, $fail failed"
