#!/bin/sh
# bench/json/run.sh: builds the JSON benchmark with -O2 against cJSON (Debian libcjson-dev)
# and prints agentkit.h and cJSON side by side on the nativejson-benchmark documents.
set -e
cd "$(dirname "$0")/../.."
make -s agentkit.h
mkdir -p build/bench
${CC:-cc} -std=c99 -O2 -D_DEFAULT_SOURCE -I. bench/json/bench_json.c -o build/bench/bench_json -lcjson -lm
build/bench/bench_json "${AK_SHARED:-../shared}/testdata/nativejson-benchmark"
