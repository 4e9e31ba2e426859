#!/usr/bin/env bash
# The `ops` helper's device script (issue #5): runs ON the GPU machine from the repository root with a published
# folder carried (scripts/gpu-publish.sh <dir>, plus this script and bench/baselines_torch.py copied into it).
# Stages (STAGES, comma list; default all): kernels (nvcc -Xptxas -v + SASS histogram of the v3 kernels), tests
# (TEST_FILTER or the backend/graph/model classes), ops, e2e, baselines (PyTorch script first, same call).
# Everything lands in $OUT: kernels.txt tests.txt log.txt ops.md e2e.md baselines.md torch.json (7 files).
set -uo pipefail
OUT=${OUT:-/tmp/nibble-out}; mkdir -p "$OUT"
G=$(cd "$(dirname "$0")" && pwd)
STAGES=${STAGES:-kernels,tests,ops,e2e,baselines}
has() { [[ ",$STAGES," == *",$1,"* ]]; }
mkdir -p /opt/dotnet && tar -C /opt/dotnet -xJf $G/dotnet.tar.xz
export DOTNET_ROOT=/opt/dotnet PATH=/opt/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
T0=$(date +%s); el() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$OUT/log.txt"; }
RES=/tmp/res; mkdir -p $RES
if has kernels; then
  {
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv
    for f in Attention Elementwise ActivationQuantFp8 QuantLinearIo; do
      (cd $G/kernels && nvcc -cubin -arch=sm_90 -Xptxas -v -o /tmp/$f.cubin $f.cu 2>&1) | grep -E "error|registers|spill|Compiling entry|stack frame" | sed 's/ptxas info    : //'
    done
    for fn in decode_attention_c1_g4 decode_attention_fused_c1_g4 silu_mul act_quant_fp8_f32; do
      f=Attention; [ $fn = silu_mul ] && f=Elementwise; [ $fn = act_quant_fp8_f32 ] && f=QuantLinearIo
      echo "== SASS opcode histogram $fn"; cuobjdump -sass -fun $fn /tmp/$f.cubin | grep -oP '/\*[0-9a-f]{4}\*/\s+\K[A-Z][A-Z0-9_.]+' | sort | uniq -c | sort -rn | head -22
    done
  } > "$OUT/kernels.txt" 2>&1
  el "kernels: $(grep -c registers $OUT/kernels.txt) entries"; grep -E "error|decode_attention_c1_g4|decode_attention_c1_g8|decode_attention_fused_c1_g[48]|spill" "$OUT/kernels.txt" | grep -v " 0 bytes spill" | head -12
fi
if has tests; then
  # xunit v3 ANDs filters of different kinds (-class with -method matches nothing), so the method filter runs separately.
  F=${TEST_FILTER:--class "Nibble.Cuda.Tests.Backend.*" -class "Nibble.Cuda.Tests.Models.CudaModelTests" -class "Nibble.Cuda.Tests.Quantized.CudaQuantizedLinearTests"}
  F2=${TEST_FILTER2:--method "*Per_token_FP8_quantization*"}
  eval timeout ${TEST_TIMEOUT:-200} dotnet $G/cuda-tests/Nibble.Cuda.Tests.dll -showLiveOutput -parallel none -reporter verbose $F > "$OUT/tests.txt" 2>&1
  el "tests rc=$?"
  [ "$F2" != none ] && { eval timeout 60 dotnet $G/cuda-tests/Nibble.Cuda.Tests.dll -parallel none -reporter verbose $F2 >> "$OUT/tests.txt" 2>&1; el "tests (2) rc=$?"; }
  grep -E "\[FAIL\]|Total:" "$OUT/tests.txt" | tail -25
fi
if has ops; then
  timeout ${OPS_TIMEOUT:-110} dotnet $G/bench/Nibble.Bench.dll ops --out $RES ${OPS_ARGS:-} >> "$OUT/log.txt" 2>&1; el "ops rc=$?"
  cp $RES/ops.md "$OUT/" 2>/dev/null; grep -E "copy|silu|add|act_quant|decode|rope|rms|graphs|nano" $RES/ops.md | cut -c1-150
fi
if has e2e; then
  timeout ${E2E_TIMEOUT:-120} dotnet $G/bench/Nibble.Bench.dll e2e --out $RES --budget-s 90 ${E2E_ARGS:-} >> "$OUT/log.txt" 2>&1; el "e2e rc=$?"
  cp $RES/e2e.md "$OUT/" 2>/dev/null; grep -E "^\| (bf16|W4)" $RES/e2e.md
fi
if has baselines; then
  timeout ${TORCH_TIMEOUT:-90} python3 $G/baselines_torch.py --out "$OUT/torch.json" >> "$OUT/log.txt" 2>&1; el "torch rc=$?"
  timeout ${BASE_TIMEOUT:-90} dotnet $G/bench/Nibble.Bench.dll baselines --out $RES --torch "$OUT/torch.json" >> "$OUT/log.txt" 2>&1; el "baselines rc=$?"
  cp $RES/baselines.md "$OUT/" 2>/dev/null; grep -E "^\| (bf16|fp8)" $RES/baselines.md
fi
el done
