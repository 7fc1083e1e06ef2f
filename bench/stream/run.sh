#!/bin/sh
# bench/stream/run.sh [MB]: SSE parser throughput (median of 7 runs) on OpenAI- and
# Anthropic-style token streams of about MB megabytes each (default 4), fed whole and in
# 7-byte and 1-byte pieces; the "x whole" column is the fragmentation overhead.
cd "$(dirname "$0")/../.." || exit 1
mkdir -p build
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE -I. bench/stream/bench_sse.c -o build/bench_sse -lm || exit 1
build/bench_sse "${1:-4}"
