#!/bin/sh
# check_fuzz.sh: every libFuzzer target (fuzz/fuzz_*.c) built once and run for
# ${AK_FUZZ_SECONDS:-60} seconds, two at a time, with its seed corpus and dictionary; fails
# on a build error or any finding (crash, leak, hang, memory blow-up, a check inside a
# target). The work is fuzz/run.sh's, which `make fuzz` runs too; with 16 targets the step
# takes about 16 * 60 / 2 s = 8 minutes. Longer runs: make fuzz FUZZ_SECONDS=600.
cd "$(dirname "$0")/.." || exit 1
exec sh fuzz/run.sh "${AK_FUZZ_SECONDS:-60}"
