#!/usr/bin/env bash
# The evidence run: ON the GPU machine, from the repository root, with a published folder carried
# (bash scripts/gpu-publish.sh; then run `bash .gpu/gpu-evidence.sh`, carry [".gpu"]). One call gives the whole GPU
# test suite, the issue's full GEMM table (W4A8, W4A16, cuBLASLt FP8/BF16), end-to-end TTFT/TPOT and the op table.
# Files in $OUT (8 at most come back): tests.txt gemm.md gemm.json gemm.log e2e.md e2e.json ops.md log.txt.
# Env: STAGES (comma list; default tests,gemm,e2e,ops), GEMM_BUDGET_S (default 230), GEMM_ARGS, OPS_ARGS, TEST_FILTER.
set -uo pipefail
OUT=${OUT:-/tmp/nibble-out}; mkdir -p "$OUT"
G=$(cd "$(dirname "$0")" && pwd)
STAGES=${STAGES:-tests,gemm,e2e,ops}
has() { [[ ",$STAGES," == *",$1,"* ]]; }
mkdir -p /opt/dotnet && tar -C /opt/dotnet -xJf "$G/dotnet.tar.xz"
export DOTNET_ROOT=/opt/dotnet PATH=/opt/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/log.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv >> "$OUT/log.txt" 2>&1
if has tests; then
  eval timeout ${TEST_TIMEOUT:-240} dotnet "$G/cuda-tests/Nibble.Cuda.Tests.dll" -showLiveOutput -parallel none -reporter verbose ${TEST_FILTER:-} > "$OUT/tests.txt" 2>&1
  el "tests rc=$?"; grep -E "\[FAIL\]|Total:" "$OUT/tests.txt" | tail -25
fi
if has gemm; then
  # SM clock and power every 200 ms while the GEMM table runs (appended to gemm.log): long large-M points may run
  # power-capped, which a per-point median cannot show.
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,noheader -lms 200 > /tmp/clocks.csv 2>&1 &
  SMI=$!
  timeout $(( ${GEMM_BUDGET_S:-230} + 60 )) dotnet "$G/bench/Nibble.Bench.dll" gemm --out "$OUT" --iters ${GEMM_ITERS:-10} --budget-s ${GEMM_BUDGET_S:-230} ${GEMM_ARGS:-} > "$OUT/gemm.log" 2>&1
  rc=$?; kill $SMI 2>/dev/null
  { echo "# nvidia-smi during the gemm stage: timestamp, SM MHz, W, C"; cat /tmp/clocks.csv; } >> "$OUT/gemm.log"
  el "gemm rc=$rc"; grep -E "^# time budget|kernel compile" "$OUT/gemm.log" | head -3
  awk -F', ' 'NF>=3 && $2+0>0 {n++; c+=$2; if (min==""||$2+0<min) min=$2+0; p+=$3} END {if (n) printf "SM clock mean %.0f MHz, min %d MHz, power mean %.0f W over %d samples\n", c/n, min, p/n, n}' /tmp/clocks.csv | tee -a "$OUT/log.txt"
fi
if has e2e; then
  timeout ${E2E_TIMEOUT:-150} dotnet "$G/bench/Nibble.Bench.dll" e2e --out "$OUT" --budget-s ${E2E_BUDGET_S:-110} ${E2E_ARGS:-} >> "$OUT/log.txt" 2>&1
  el "e2e rc=$?"; grep -E "^\| (bf16|W4)" "$OUT/e2e.md"
fi
if has ops; then
  mkdir -p /tmp/ops && timeout ${OPS_TIMEOUT:-100} dotnet "$G/bench/Nibble.Bench.dll" ops --out /tmp/ops ${OPS_ARGS:-} >> "$OUT/log.txt" 2>&1
  el "ops rc=$?"; cp /tmp/ops/ops.md "$OUT/" 2>/dev/null
fi
el done
