#!/bin/sh
# suite_model.sh BUILD_DIR: the `akdriver model-response` and `model-request` commands. Every
# provider fixture with an expected .out (tests/fixtures/<provider>/, format in
# tests/model_fixtures.h) must print exactly that, with the exit code it implies, whatever
# --chunk size feeds it; model-request prints the provider request; bad usage exits 2.
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

for provider in openai anthropic gemini ollama; do
  for f in tests/fixtures/$provider/*.sse tests/fixtures/$provider/*.ndjson tests/fixtures/$provider/*.json; do
    [ -f "$f" ] || continue
    base=${f%.*}
    [ -f "$base.out" ] || continue
    set -- model-response "$provider"
    case $f in *.json) ;; *) set -- "$@" --stream ;; esac
    if [ -f "$base.http" ]; then
      set -- "$@" --status "$(head -n 1 "$base.http")"
      tail -n +2 "$base.http" > "$tmp/headers"
      while IFS= read -r h; do [ -n "$h" ] && set -- "$@" --header "$h"; done < "$tmp/headers"
    fi
    want=$(cat "$base.out")
    case $want in '{"error"'*) want_rc=1 ;; *) want_rc=0 ;; esac
    for chunk in "" 1 5; do
      got=$("$drv" "$@" ${chunk:+--chunk $chunk} "$f"); rc=$?
      check "$f chunk '${chunk:-all}'" "$want" "$got"
      check "$f chunk '${chunk:-all}' exit" "$want_rc" "$rc"
    done
  done
done

# stdin works the same as a file
got=$(printf 'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n' |
  "$drv" model-response openai --stream)
check "stdin" '{"message":{"role":"model","content":[{"text":"hi"}]},"finishReason":"stop"}' "$got"

printf '{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"config":{"maxOutputTokens":5}}' > "$tmp/req.json"
got=$("$drv" model-request openai "$tmp/req.json")
check "model-request openai" '{"method":"POST","url":"https://api.openai.com/v1/chat/completions","headers":{"Content-Type":"application/json","Authorization":"Bearer test-key"},"body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}],"max_completion_tokens":5}}' "$got"
got=$("$drv" model-request ollama --stream < "$tmp/req.json")
check "model-request ollama --stream" '{"method":"POST","url":"http://localhost:11434/api/chat","headers":{"Content-Type":"application/json","Authorization":"Bearer test-key"},"body":{"model":"llama3.2","messages":[{"role":"user","content":"Hi"}],"options":{"num_predict":5},"stream":true}}' "$got"
for provider in anthropic gemini; do
  "$drv" model-request $provider "$tmp/req.json" > "$tmp/out" 2>&1
  check "model-request $provider exit" 0 "$?"
  case $(cat "$tmp/out") in '{"method":"POST","url":"https://'*) r=ok ;; *) r=$(cat "$tmp/out") ;; esac
  check "model-request $provider shape" ok "$r"
done

printf '{"messages":[{"role":"robot","content":[]}]}' > "$tmp/bad.json"
got=$("$drv" model-request openai "$tmp/bad.json" 2>&1); rc=$?
check "model-request refused: exit" 1 "$rc"
check "model-request refused: reason" 'messages[0]: role must be one of user, model, system, tool' "$got"
printf 'not json' | "$drv" model-request openai > /dev/null 2>&1
check "model-request not JSON: exit" 2 "$?"

for args in "model-response" "model-response nope" "model-response openai --chunk 0" "model-response openai --status 42" \
            "model-response openai --header nocolon" "model-response openai --bogus" "model-request" "model-request nope" \
            "model-response openai /nonexistent/file"; do
  "$drv" $args < /dev/null > /dev/null 2>&1
  check "usage: $args" 2 "$?"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
