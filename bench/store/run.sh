#!/bin/sh
# bench/store: bytes written per turn and save/load latency of the file store, message deltas
# versus the full state on every turn (Genkit's FileSessionStore). TURNS=N to change the
# conversation length (default 50), BENCH_DIR=DIR to put the stores elsewhere (default build/).
set -e
cd "$(dirname "$0")/../.."
mkdir -p build
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE -I. bench/store/bench_store.c -o build/bench_store -lm
./build/bench_store "${TURNS:-50}"
