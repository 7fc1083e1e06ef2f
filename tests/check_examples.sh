#!/bin/sh
# check_examples.sh: every examples/*.c builds with the cc command written in its own header
# (run in examples/, plus -Wall -Wextra -Werror -pedantic; clang also checks each one), and
# every example runs offline with scripted input and says what it should: serve.c answers
# the curl session of its header and remote.c; curl_transport.c talks to `akdriver serve`;
# demo.c runs offline, through `make demo`, and against a fake OpenAI-compatible server
# (node). Servers run on ephemeral ports and are stopped by PID.
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)
tmp=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
# offline: no provider from the caller's environment
unset OPENAI_API_KEY OPENAI_BASE_URL OPENAI_MODEL ANTHROPIC_API_KEY GEMINI_API_KEY OLLAMA_HOST
passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok    $1"; }
fail() { failed=$((failed + 1)); echo "FAIL  $1"; [ -f "$2" ] && sed 's/^/      /' "$2" | tail -n 30; }

# expect NAME OUTPUT_FILE STRING...: the output holds every string (fixed strings)
expect() {
  name=$1 out=$2
  shift 2
  for want in "$@"; do
    grep -qF -- "$want" "$out" || { echo "missing: $want" >>"$out"; fail "$name" "$out"; return; }
  done
  pass "$name"
}

# The build command in the first lines of an example: "   cc ... NAME.c -o NAME ...".
build_command() { sed -n '1,12s/^[ /*]*\(cc .*\)$/\1/p' "$1" | head -n 1; }

# starts a server command in the background; waits for "PREFIX<port>" on its stdout
# (sets port, adds the PID to pids)
start_server() { # log prefix command...
  log=$1 prefix=$2
  shift 2
  : >"$log"
  "$@" >"$log" 2>&1 &
  server_pid=$!
  pids="$pids $server_pid"
  port=""
  for _ in $(seq 100); do
    port=$(sed -n "s|.*$prefix\([0-9][0-9]*\).*|\1|p" "$log" | head -n 1)
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  return 1
}

stop_server() { kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; }

# ---- builds: all at once, then the results ---------------------------------------------
for src in examples/*.c; do
  name=$(basename "$src" .c)
  cmd=$(build_command "$src")
  case "$cmd" in *" -o $name"*) ;; *) echo "no 'cc ... -o $name' line at the top" >"$tmp/$name.build"; echo 1 >"$tmp/$name.rc"; continue;; esac
  # the example's own command, output into $tmp, warnings fatal
  full=$(printf '%s' "$cmd" | sed "s| -o $name| -o $tmp/$name|")" -Wall -Wextra -Werror -pedantic"
  # clang on the same flags, compile only (cheap: no optimiser)
  syntax=$(printf '%s' "$cmd" | sed "s| -o $name.*||; s|^cc |clang -fsyntax-only -Wall -Wextra -Werror -pedantic |")
  (cd examples && { eval "$full" && eval "$syntax"; } >"$tmp/$name.build" 2>&1; echo $? >"$tmp/$name.rc") &
done
wait
for src in examples/*.c; do
  name=$(basename "$src" .c)
  if [ "$(cat "$tmp/$name.rc")" = 0 ] && [ -x "$tmp/$name" ]; then pass "build $name"; else fail "build $name" "$tmp/$name.build"; fi
done
cd "$tmp" || exit 1

# ---- runs ------------------------------------------------------------------------------
run() { # NAME [args...] < input: runs an example with a time limit; output in NAME.out
  name=$1
  shift
  timeout 60 "./$name" "$@" >"$name.out" 2>&1
  echo "exit $?" >>"$name.out"
}

printf 'hello\nstream one two three\ncount\n' | run chat
expect "chat: streams, keeps the conversation" chat.out "model scripted" "agent> echo: hello" "agent> one two three" "history=5" "exit 0"

run tools
expect "tools: the tool runs inside the turn" tools.out "[tool] getWeather(Oslo)" \
  'agent> tool result: [{"city":"Oslo","tempC":4,"sky":"clear"}]' '{"role":"tool","content":[{"toolResponse":' "exit 0"

# the README shows examples/quickstart.c verbatim
if awk '/^```c$/{on=1; next} /^```$/{if (on) exit} on' "$root/README.md" | cmp -s - "$root/examples/quickstart.c"; then
  pass "README's quick start is examples/quickstart.c"
else
  echo "README.md's first C block differs from examples/quickstart.c" >readme.diff
  fail "README's quick start is examples/quickstart.c" readme.diff
fi
run quickstart
expect "quickstart: the README's agent calls its tool" quickstart.out 'tool result: [{"city":"Oslo","tempC":21}]' "exit 0"
OPENAI_BASE_URL=http://127.0.0.1:1/v1 run quickstart
expect "quickstart: an unreachable provider is a clear error" quickstart.out "error: UNAVAILABLE: openai: connection failed" "exit 1"

printf 'transfer 250\ny\ntransfer 9000\nn\nhello\n' | run approval
expect "approval: y and n answer the interrupt" approval.out 'approveTransfer {"amount":250}' \
  'agent> tool result: [{"approved":true}]' 'agent> tool result: [{"approved":false}]' "agent> echo: hello" "exit 0"
printf 'transfer 5\n' | run approval
expect "approval: input ending at the question" approval.out 'approveTransfer {"amount":5}' "exit 0"

run custom_agent
expect "custom_agent: state patches and artifacts stream" custom_agent.out \
  'stream {"customPatch":[{"op":"replace","path":"","value":{"items":["milk"]}}]}' \
  'stream {"customPatch":[{"op":"add","path":"/items/-","value":"bread"}]}' \
  'stream {"artifact":{"name":"todo.md","parts":[{"text":"# To do\n- [ ] milk\n- [ ] eggs\n- [ ] bread\n"}]}}' \
  'state {"items":["milk","eggs","bread"]}' "agent> 3 item(s) on the list." "exit 0"

printf 'hello\n' | run persistence sessions
cp persistence.out persistence1.out
printf 'count\n' | run persistence sessions
cat persistence1.out >>persistence.out
expect "persistence: the second run resumes from disk" persistence.out "session my-chat in sessions: 0 message(s)" \
  "agent> echo: hello" "session my-chat in sessions: 2 message(s)" "  user: hello" "agent> history=3" "exit 0"
: >not-a-dir
run persistence not-a-dir
expect "persistence: an unusable directory is a clean error" persistence.out "persistence: not-a-dir:" "exit 1"

run background
expect "background: detached, polled, aborted" background.out "status pending" "status completed: job done" \
  "abort: it was pending" "status aborted" "exit 0"

# game_loop.c: a 60 fps loop pumping a turn from its own slow server; a call into the library
# over 10 ms (a blocking one) fails it; the figures it prints are the ones to quote
run game_loop --max-call-ms 10
expect "game_loop: the turn pumped per frame, the tool on the game thread" game_loop.out \
  'the guard calls lookAround {"radius":6} on the game thread' "guard> I see the key at 4, 3, just past the old well." \
  "guard> Good luck, traveller." "goal, no library call over 1 ms" "exit 0"

# serve.c, then remote.c and the curl session of serve.c's header against it
if start_server serve.log "serving http://127.0.0.1:" ./serve 0; then
  run remote "http://127.0.0.1:$port/api/assistant"
  expect "remote: a served agent used as a local one" remote.out "[one ][two ][three] -> one two three" \
    'agent> tool result: [{"city":"Oslo","tempC":21,"sky":"clear"}]' "(asks to approve approveTransfer) approved" \
    'agent> tool result: [{"approved":true}]' "status completed, 10 messages" "exit 0"
  sed -n '/^     A=/,/^$/p' "$root/examples/serve.c" | sed "s/^     //; s/3400/$port/g" >routes.sh
  timeout 60 sh -e routes.sh >routes.out 2>&1
  echo "exit $?" >>routes.out
  expect "serve: every route of its header answers" routes.out '{"ok":true,"agents":["assistant"]}' \
    'tool result: [{\"city\":\"Oslo\"' 'data: {"message":{"modelChunk":{"role":"model","index":0,"content":[{"text":"one "}]}}}' \
    'data: {"result":' 'tool result: [{\"approved\":true}]' '"finishReason":"interrupted"' \
    '{"result":{"snapshotId":' '"status":"pending"}}' "exit 0"
  stop_server
  echo "exit $?" >>serve.log
  expect "serve: SIGTERM shuts down cleanly" serve.log "exit 0"
else
  fail "serve: did not start" serve.log
fi
run remote "http://127.0.0.1:1/api/assistant"
expect "remote: an unreachable server is a clean error" remote.out "remote: turn: cannot reach the remote agent" "exit 1"

# curl_transport.c against akdriver serve, under valgrind (it manages its own memory)
[ -x "$root/build/akdriver" ] || make -s -C "$root" build/akdriver >/dev/null
if start_server akdriver.log "listening " "$root/build/akdriver" serve --port 0; then
  VG="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
  timeout 120 $VG ./curl_transport "http://127.0.0.1:$port/api/chatAgent" >curl.out 2>&1
  echo "exit $?" >>curl.out
  expect "curl_transport: easy and multi interfaces (valgrind)" curl.out "blocking: echo: hello" \
    "pumped: [one ][two ][three] -> one two three" "exit 0"
  stop_server
else
  fail "akdriver serve: did not start" akdriver.log
fi
timeout 60 ./curl_transport "http://127.0.0.1:1/api/chatAgent" >curl.out 2>&1
echo "exit $?" >>curl.out
expect "curl_transport: connection refused reaches the caller" curl.out "blocking: error: cannot reach the remote agent" "exit 1"

run demo demo-sessions
expect "demo: offline tour" demo.out "demo on model scripted" "== 1. Streaming" "agent> Agents are loops of a model, tools and memory." \
  '[tool] getWeather {"city":"Oslo"}' "[paused] the agent asks to run approveTransfer" 'agent> tool result: [{"approved":true}]' \
  "file demo-sessions/global/" "loaded 10 messages" "agent> history=11" "OPENAI_BASE_URL=http://localhost:8080/v1 make demo" "exit 0"

(cd "$root" && timeout 300 make -s demo BUILD="$tmp/make-demo") >make-demo.out 2>&1
echo "exit $?" >>make-demo.out
expect "make demo" make-demo.out "agent> history=11" "exit 0"

# The same tour against a real (fake) provider: an OpenAI-compatible server that streams
# text, and calls getWeather / approveTransfer when asked about weather / transfers.
cat >fake_openai.js <<'JS'
const http = require('http');
const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    const r = JSON.parse(body), msgs = r.messages, last = msgs[msgs.length - 1];
    const user = msgs.filter((m) => m.role === 'user').pop();
    const text = typeof user.content === 'string' ? user.content : user.content.map((p) => p.text || '').join('');
    const call = (name, args) => ({ tool_calls: [{ index: 0, id: 'call_' + name, type: 'function', function: { name, arguments: args } }] });
    let delta;
    if (last.role === 'tool') delta = { content: 'The tool said ' + last.content };
    else if (/weather/i.test(text)) delta = call('getWeather', '{"city":"Oslo"}');
    else if (/transfer/i.test(text)) delta = call('approveTransfer', '{"amount":250}');
    else delta = { content: 'I was sent ' + msgs.length + ' messages.' };
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const send = (d, finish) => res.write('data: ' + JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: r.model,
      choices: [{ index: 0, delta: d, finish_reason: finish }] }) + '\n\n');
    send({ role: 'assistant', content: '' }, null);
    if (delta.content) delta.content.split(/(?<= )/).forEach((w) => send({ content: w }, null));
    else send(delta, null);
    send({}, delta.tool_calls ? 'tool_calls' : 'stop');
    res.end('data: [DONE]\n\n');
  });
});
server.listen(0, '127.0.0.1', () => console.log('listening ' + server.address().port));
JS
if start_server fake.log "listening " node fake_openai.js; then
  OPENAI_BASE_URL="http://127.0.0.1:$port/v1" timeout 60 ./demo online-sessions >online.out 2>&1
  echo "exit $?" >>online.out
  expect "demo: the same tour on a provider (fake OpenAI-compatible server)" online.out "demo on model openai/gpt-4o-mini" \
    "agent> I was sent 2 messages." '[tool] getWeather {"city":"Oslo"}' 'agent> The tool said {"city":"Oslo","tempC":21,"sky":"clear"}' \
    "[paused] the agent asks to run approveTransfer; input {\"amount\":250}" 'agent> The tool said {"approved":true}' \
    "loaded 10 messages" "agent> I was sent 12 messages." "That was openai/gpt-4o-mini." "exit 0"
  stop_server
else
  fail "fake OpenAI server (node): did not start" fake.log
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
