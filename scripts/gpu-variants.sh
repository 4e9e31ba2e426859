#!/usr/bin/env bash
# Variant run ON the GPU machine (carry the published folder: bash scripts/gpu-publish.sh, then `bash .gpu/gpu-variants.sh`):
# the ptxas report (registers, spills, serialization warnings) of each warp-specialized build, the GPU tests of the
# GEMM kernels and their variants, and one bench process timing the variants beside cuBLASLt FP8/BF16 and W4A16.
# Files in $OUT: kernels.txt tests.txt gemm.log gemm.md gemm.json log.txt.
# Env: WS_DEFS (list of define sets, ';'-separated), TEST_FILTER, TEST_TIMEOUT, GEMM_ARGS, GEMM_BUDGET_S, GEMM_ITERS.
set -uo pipefail
OUT=${OUT:-/tmp/nibble-out}; mkdir -p "$OUT"
G=$(cd "$(dirname "$0")" && pwd)
mkdir -p /opt/dotnet && tar -C /opt/dotnet -xJf "$G/dotnet.tar.xz"
export DOTNET_ROOT=/opt/dotnet PATH=/opt/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/log.txt"; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv >> "$OUT/log.txt" 2>&1
{
  IFS=';' read -ra SETS <<< "${WS_DEFS:-W4A8_WS_SPLIT=1;W4A8_WS_SPLIT=1 W4A8_WS_GROUP=2;W4A8_WS_SPLIT=1 W4A8_WS_REGS=240;W4A8_WS_SPLIT=1 W4A8_WS_GROUP=2 W4A8_WS_REGS=240}"
  for defs in "${SETS[@]}"; do
    echo "== W4A8GemmWs.cu $defs"
    D=""; for d in $defs; do D="$D -D$d"; done
    (cd "$G/kernels" && nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -Xptxas -v $D -o /tmp/ws.cubin W4A8GemmWs.cu > /tmp/ws.ptxas 2>&1)
    grep -E "registers|spill|Compiling entry" /tmp/ws.ptxas | sed 's/ptxas info    : //' | paste - - - | sed 's/Compiling entry function//'
    grep -iE "warn|serializ|C75|error" /tmp/ws.ptxas | head -10
  done
  echo "== W4A8GemmMma.cu"
  (cd "$G/kernels" && nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -o /tmp/mma.cubin W4A8GemmMma.cu > /tmp/mma.ptxas 2>&1)
  grep -E "registers|spill|Compiling entry" /tmp/mma.ptxas | sed 's/ptxas info    : //' | paste - - - | sed 's/Compiling entry function//'
  grep -iE "warn|error" /tmp/mma.ptxas | head -10
} > "$OUT/kernels.txt" 2>&1
el "kernels: $(grep -c registers "$OUT/kernels.txt") entries"; grep -iE "warn|error|serializ" "$OUT/kernels.txt" | head
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  eval timeout ${TEST_TIMEOUT:-240} dotnet "$G/cuda-tests/Nibble.Cuda.Tests.dll" -showLiveOutput -parallel none -reporter verbose ${TEST_FILTER:-} > "$OUT/tests.txt" 2>&1
  el "tests rc=$?"; grep -E "\[FAIL\]|Total:" "$OUT/tests.txt" | tail -25
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  timeout $(( ${GEMM_BUDGET_S:-230} + 60 )) dotnet "$G/bench/Nibble.Bench.dll" gemm --out "$OUT" --iters ${GEMM_ITERS:-10} --budget-s ${GEMM_BUDGET_S:-230} ${GEMM_ARGS:-} > "$OUT/gemm.log" 2>&1
  el "gemm rc=$?"; grep -E "variants|^M=" "$OUT/gemm.log" | head -150
fi
el done
