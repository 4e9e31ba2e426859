#!/usr/bin/env bash
# Builds the solution and runs every xunit v3 test executable; prints "N passed, N failed, N skipped" last.
# GPU tests (tests/Nibble.Cuda.Tests) run too: without a GPU they report as skipped, never as passed.
set -euo pipefail
cd "$(dirname "$0")/.."
config=${CONFIGURATION:-Release}
results=${TEST_RESULTS:-artifacts/test-results}
rm -rf "$results" && mkdir -p "$results"

dotnet build Nibble.slnx -c "$config" -nologo -clp:ErrorsOnly

status=0
for proj in tests/*/; do
  name=$(basename "$proj")
  exe="$proj/bin/$config/net10.0/$name.dll"
  [ -f "$exe" ] || { echo "missing test assembly $exe"; exit 1; }
  echo "== $name"
  dotnet "$exe" -xml "$results/$name.xml" -noColor "$@" || status=1
done

passed=0; failed=0; skipped=0
for xml in "$results"/*.xml; do
  # <assembly ... total="N" passed="N" failed="N" skipped="N" ... errors="N">
  a=$(grep -o '<assembly [^>]*>' "$xml" | head -1)
  get() { echo "$a" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
  passed=$((passed + $(get passed))); failed=$((failed + $(get failed) + $(get errors))); skipped=$((skipped + $(get skipped)))
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && exit $status || exit 1
