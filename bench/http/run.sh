#!/bin/sh
# bench/http/run.sh [SCALE]: what keep-alive connection reuse buys agentkit.h's POSIX client
# transport, side by side with libcurl (Debian libcurl4-openssl-dev). Makes a CA and a
# localhost certificate with the openssl CLI in a temporary directory, starts one Node
# process serving plain HTTP and HTTPS (TLS 1.2, the newest mbedTLS 2.28 speaks, so both
# clients do the same handshake) on 127.0.0.1, keeping connections alive and answering
# every GET with the same ~300-byte JSON body (a small non-streamed model answer), then runs
# bench_http.c (built -O2): sequential GETs, median and p99 microseconds per request for
# agentkit with reuse on and off and libcurl with a reused and a fresh easy handle, and the
# ratios. SCALE multiplies the request counts (2000 per row for http, 500 for https);
# 0.1 makes a quick smoke run. Prints what the server saw (connections, TLS version and
# cipher) and the load average around the run. Exits non-zero when something does not
# start or a response fails verification. The server is stopped by PID and the directory
# removed on exit, Ctrl-C included.
cd "$(dirname "$0")/../.." || exit 1
make -s agentkit.h || exit 1
mkdir -p build/bench
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE -I. bench/http/bench_http.c -o build/bench/bench_http \
  -lcurl -lmbedtls -lmbedx509 -lmbedcrypto -lm || exit 1
command -v node >/dev/null || { echo "bench/http needs node for its servers"; exit 1; }

. bench/common.sh

# ossl ARGS...: an openssl command in the temporary directory; stops the run if it fails.
ossl() {
  (cd "$tmp" && openssl "$@") >>"$tmp/openssl.log" 2>&1 && return 0
  echo "openssl $1 failed:"; cat "$tmp/openssl.log"; exit 1
}

make_certs() {
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$tmp/server.ext"
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt \
    -days 2 -subj /CN=agentkit-bench-CA -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key -out server.csr \
    -subj /CN=localhost
  ossl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
    -extfile server.ext
}

# The answer to every request, as a provider would send a short non-streamed reply.
printf '%s' '{"id":"chatcmpl-9abcDEFghiJKLmnoPQR","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":8,"total_tokens":22}}' > "$tmp/body.json"

# Both servers in one process. X-Request-On-Connection numbers the requests on each
# connection, so the benchmark can check that reuse happens exactly when it should. On
# SIGTERM it prints the connections it accepted and the TLS parameters they used.
cat > "$tmp/server.js" <<'EOF'
const fs = require('fs'), http = require('http'), https = require('https');
const [certFile, keyFile, bodyFile] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
const seen = {http: 0, https: 0}, tls = {};
function answer(req, res) {
  const s = req.socket;
  s.requests = (s.requests || 0) + 1;
  res.writeHead(200, {'Content-Type': 'application/json', 'Content-Length': body.length,
                      'X-Request-On-Connection': s.requests});
  res.end(body);
}
const plain = http.createServer(answer);
const secure = https.createServer({cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile),
                                   maxVersion: 'TLSv1.2'}, answer);
plain.on('connection', () => seen.http++);
secure.on('secureConnection', s => {
  seen.https++;
  const k = s.getProtocol() + ' ' + s.getCipher().name;
  tls[k] = (tls[k] || 0) + 1;
});
for (const s of [plain, secure]) s.keepAliveTimeout = 120000;
process.on('SIGTERM', () => {
  console.log('served: ' + seen.http + ' http connections, ' + seen.https + ' https connections (' +
              Object.entries(tls).map(([k, n]) => n + ' ' + k).join(', ') + ')');
  process.exit(0);
});
plain.listen(0, '127.0.0.1', () => secure.listen(0, '127.0.0.1', () =>
  console.log('listening ' + plain.address().port + ' ' + secure.address().port)));
EOF

# Starts the server and sets http_port and https_port from its "listening" line.
start_server() {
  node "$tmp/server.js" "$tmp/server.crt" "$tmp/server.key" "$tmp/body.json" > "$tmp/server.log" 2>&1 &
  pid=$!
  i=0
  while [ $i -lt 100 ]; do
    ports=$(awk '/^listening [0-9]+ [0-9]+$/{print $2, $3; exit}' "$tmp/server.log")
    [ -n "$ports" ] && { http_port=${ports% *}; https_port=${ports#* }; return 0; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1; i=$((i + 1))
  done
  echo "the server did not start:"; cat "$tmp/server.log"; return 1
}

make_certs
start_server || exit 1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
build/bench/bench_http "$http_port" "$https_port" "$tmp/ca.crt" "$tmp/body.json" "${1:-1}"
rc=$?
echo
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
kill -0 "$pid" 2>/dev/null || { echo "the server died during the run:"; cat "$tmp/server.log"; rc=1; }
stop_server
sed -n 's/^served: /server: /p' "$tmp/server.log"
exit $rc
