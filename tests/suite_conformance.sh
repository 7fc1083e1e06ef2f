#!/bin/sh
# Genkit's cross-language agent conformance spec, run by akdriver (39 tests, none skipped).
build=${1:-build}
exec ${AK_RUNNER:-} "$build/akdriver" conformance "${AK_SHARED:-../shared}/conformance/genkit-agent-spec.json"
