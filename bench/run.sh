#!/bin/sh
# Runs every benchmark (bench/*/run.sh), each printing its own side-by-side table.
cd "$(dirname "$0")/.."
rc=0
for b in bench/*/run.sh; do
  [ -f "$b" ] || continue
  echo "### $(dirname "$b")"
  sh "$b" || rc=1
  echo
done
exit $rc
