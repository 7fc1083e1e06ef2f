#!/bin/sh
# reliability_report.sh [BUILD_DIR]: prints the markdown table of the README's reliability
# section: inputs tried, faults injected and failures found, per kind of hardening.
#
# The allocation-failure, faulty-network and hostile-client figures come from running
# tests/test_oom, tests/test_faults and tests/test_hostile (built by make into BUILD_DIR,
# default build). The fuzzing figures come from the last fuzz run (build/fuzz/summary.txt,
# written by `make fuzz` or `make check`); "regressions" counts the inputs of past findings
# kept in the seed corpora (fuzz/corpus/<target>/regress_*), which every run replays first.
set -u
cd "$(dirname "$0")/.." || exit 1
build=${1:-build}
make -s BUILD="$build" "$build/test_oom" "$build/test_faults" "$build/test_hostile" >/dev/null || exit 1
summary=${AK_FUZZ_BUILD:-build/fuzz}/summary.txt

oom=$("$build/test_oom" 2>&1)
faults=$("$build/test_faults" 2>&1)
hostile=$("$build/test_hostile" 2>&1)
pick() { # text regex field: a number out of a test's output
  printf '%s\n' "$1" | grep -E "$2" | tail -n 1 | awk "{print \$$3}"
}
allocs=$(pick "$oom" 'allocations, ' 1)
points=$(pick "$oom" 'failure points run' 3)
failed_points=$(pick "$oom" 'failure points run' 7)
scenarios=$(pick "$faults" 'fault scenarios' 1)
hclasses=$(pick "$hostile" 'hostile request classes' 1)
legit=$(pick "$hostile" 'legitimate turns' 5)
legit_failed=$(pick "$hostile" 'legitimate turns' 11)
peak=$(pick "$hostile" 'context peak' 5)
status() { # output -> "ok" or "FAILING"
  printf '%s\n' "$1" | grep -qE '^[0-9]+ passed, 0 failed$' && echo ok || echo FAILING
}

faults_of() { # fuzz target -> what it throws at the code
  case $1 in
    fuzz_json_*) echo "arbitrary bytes as JSON / pointers / patches / schemas; depth and size limits" ;;
    fuzz_sse|fuzz_ndjson) echo "arbitrary streams cut at every size; line and event limits" ;;
    fuzz_http_*) echo "arbitrary HTTP bytes, any split, small limits, failed allocations" ;;
    fuzz_adapter_*) echo "arbitrary provider bodies (whole, split, byte by byte), error statuses, body limits" ;;
    fuzz_filestore_load) echo "arbitrary row, delta and pointer files; saves on top; failed allocations" ;;
    fuzz_serve) echo "arbitrary requests (HTTP or direct), auth, tight limits, vanished clients, failed allocations" ;;
    fuzz_remote) echo "arbitrary agent answers, resets, truncation, delays past the timeout, failed allocations" ;;
    *) echo "arbitrary bytes" ;;
  esac
}

echo "| what | inputs tried | faults injected | failures |"
echo "|---|---|---|---|"
total=0
if [ -s "$summary" ]; then
  while read -r name runs secs findings; do
    total=$((total + runs))
    regress=$(ls "fuzz/corpus/$name" 2>/dev/null | grep -c '^regress_')
    printf '| fuzz: %s | %s executions in %s s | %s | %s in this run; %s past findings replayed (regress_* seeds) |\n' \
      "$name" "$runs" "$secs" "$(faults_of "$name")" "$findings" "$regress"
  done < "$summary"
  echo "| fuzz: all $(wc -l < "$summary" | tr -d ' ') targets | $total executions | | |"
else
  echo "| fuzz | not run yet (make fuzz, or make check) | | |"
fi
echo "| allocation failure (tests/test_oom) | 1 conversation (tools, custom state, artifacts, an interrupt and its resume, a detach, file-store saves) x $points failure points of $allocs allocations | the Nth allocation fails; $failed_points runs ended with a failed step | $(status "$oom"): every run clean, no leak, the store reads the last good snapshot |"
echo "| faulty networks (tests/test_faults) | $scenarios scenarios: replay transport and real sockets, OpenAI and Anthropic agents, the remote client | resets mid-stream, truncated bodies and frames, garbage bytes, silent servers, drip-fed streams, 429/503 with Retry-After, 500s | $(status "$faults"): retried only before anything streamed, the last good snapshot kept |"
echo "| hostile clients (tests/test_hostile) | $hclasses request classes + 40 slowloris connections; $legit legitimate turns meanwhile | malformed, oversized, invalid UTF-8, nesting bombs, forged resumes, other tenants' and sessions' ids, tenant path escape | $(status "$hostile"): each its 4xx or status; $legit_failed legitimate turns failed; server memory peak $peak bytes |"

cat <<'EOF'

Failures found by the fuzz targets and these tests, each fixed (regression in brackets):
- the file and memory stores returned a refused save's error without filling `err` (fuzz_filestore_load) [fuzz/corpus/fuzz_filestore_load/regress_mutator_error_unset]
- the server's route matching read past the end of a path shorter than a prefix (fuzz_serve) [fuzz/corpus/fuzz_serve/regress_short_path_overread]
- `ak_chat_send`, `ak_agent_run` and the remote `getSnapshot`/`abort` returned AK_PENDING after one step of a call that was not finished (fuzz_remote) [test_faults: blocking_helpers_pump_until_the_end; fuzz/corpus/fuzz_remote/regress_pending_json_call]
- a remote answer whose `artifacts` was not an array was walked as one: a wild read (fuzz_remote) [fuzz/corpus/fuzz_remote/regress_artifacts_not_an_array]
- a remote error or a failed turn with an empty message became an error with no message at all (fuzz_remote) [fuzz/corpus/fuzz_remote/regress_empty_error_message, regress_empty_turn_error]
- a JSON Patch of 40 "copy" operations, each copying the whole document into itself, doubled it each time until memory ran out (2 GB from a 1.6 KB patch); the copies of one patch may now add at most `AK_JSON_PATCH_MAX_COPY` (16 MiB) and then fail with AK_ERR_LIMIT, leaving the document as it was (fuzz_json_patch) [test_jsonpatch: copy_growth_is_bounded; fuzz/corpus/fuzz_json_patch/regress_copy_doubling]
- a false alarm in the json_patch target's own check, which expected a lenient patch to reproduce any diff: lenient mode refuses paths through `constructor`, `prototype` and `__proto__` by design, as Genkit's client does; the check now allows exactly that refusal (fuzz_json_patch) [fuzz/corpus/fuzz_json_patch/regress_diff_through_constructor]
- `ak_chat_detach` leaked the response of a detach whose turn failed (test_oom)
- the scripted model answered "echo: " when the user's text was lost to a failed allocation (test_oom)
- a custom-state patch that could not be built under memory pressure was dropped silently, leaving the client's custom state wrong; the turn now fails (test_oom)
- the OpenAI and Ollama adapters did not retry a stream cut before anything was streamed, unlike Anthropic and Gemini (test_faults)
- the remote client reported a stream cut in the middle of a frame as INTERNAL "not JSON" instead of UNAVAILABLE (test_faults)
EOF
