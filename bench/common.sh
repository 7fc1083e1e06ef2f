# bench/common.sh, sourced by benchmarks that run a server: a temporary directory in $tmp,
# and stop_server, which stops the server whose PID is in $pid. Both run on exit.
tmp=$(mktemp -d) || exit 1
pid=""
stop_server() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
  pid=""
}
trap 'stop_server; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
