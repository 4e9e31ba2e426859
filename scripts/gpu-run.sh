#!/usr/bin/env bash
# Runs ON the GPU machine from the repository root, with the published .gpu folder carried along
# (see scripts/gpu-publish.sh). Unpacks the .NET runtime, checks the kernels with nvcc (registers, spills, SASS),
# runs the GPU tests, then the `gemm` benchmark. Logs and results go to $OUT (at most 8 files).
# Env: BENCH_ARGS (extra args for the gemm suite), SKIP_TESTS=1, SKIP_BENCH=1, TEST_FILTER (xunit filter args).
set -uo pipefail
OUT=${OUT:-/tmp/nibble-out}; mkdir -p "$OUT"
G=$(dirname "$0")   # .gpu, or a helper's own .gpu-<name> folder
mkdir -p /opt/dotnet && tar -C /opt/dotnet -xJf $G/dotnet.tar.xz
export DOTNET_ROOT=/opt/dotnet PATH=/opt/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv
  grep -nE "CUBLASLT_MATMUL_DESC_(A_SCALE_MODE|FAST_ACCUM|A_SCALE_POINTER)|MATRIX_SCALE_OUTER_VEC_32F" /usr/local/cuda/include/cublasLt.h | head
  for f in W4A8Gemm W4A8GemmMma W4A8GemmWs W4A16Gemm ActivationQuantFp8 W4A8WeightPrep; do
    (cd $G/kernels && nvcc -cubin -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -o /tmp/$f.cubin $f.cu > /tmp/$f.ptxas 2>&1)
    grep -E "error|registers|spill|Compiling entry" /tmp/$f.ptxas | sed 's/ptxas info    : //' | paste - - - | sed 's/Compiling entry function//'
    # ptxas warnings that cost speed silently (wgmma serialization, ignored setmaxnreg)
    grep -iE "warn|serializ|C75" /tmp/$f.ptxas | head -10
  done
  for fn in w4a8_gemm_n8_wg1_ks8 w4a8_gemm_n128_wg2_ks4; do
    echo "== SASS opcode histogram $fn"
    cuobjdump -sass -fun $fn /tmp/W4A8Gemm.cubin | grep -oP '/\*[0-9a-f]{4}\*/\s+\K[A-Z][A-Z0-9_.]+' | sort | uniq -c | sort -rn | head -25
  done
  for fn in w4a8_mma_m8_w1u w4a8_mma_m8_w1v w4a8_mma_m16_w1u w4a8_mma_m16_w1v; do
    echo "== SASS opcode histogram $fn ($(cuobjdump -sass -fun $fn /tmp/W4A8GemmMma.cubin | grep -cP '/\*[0-9a-f]{4}\*/\s+[A-Z]') instructions)"
    cuobjdump -sass -fun $fn /tmp/W4A8GemmMma.cubin | grep -oP '/\*[0-9a-f]{4}\*/\s+\K[A-Z][A-Z0-9_.]+' | sort | uniq -c | sort -rn | head -25
  done
  for fn in w4a8_ws_n128_r2 w4a8_ws_n64_r1; do
    echo "== SASS opcode histogram $fn"
    cuobjdump -sass -fun $fn /tmp/W4A8GemmWs.cubin | grep -oP '/\*[0-9a-f]{4}\*/\s+\K[A-Z][A-Z0-9_.]+' | sort | uniq -c | sort -rn | head -30
  done
} > "$OUT/kernels.txt" 2>&1
if [ "${SASS:-0}" = 1 ]; then
  { cuobjdump -sass -fun ${SASS_FUN:-w4a8_ws_n128_r2} /tmp/${SASS_FILE:-W4A8GemmWs}.cubin; } > "$OUT/sass.txt" 2>&1
fi
if [ "${NCU:-0}" = 1 ]; then
  ncu --target-processes all -k regex:"${NCU_KERNEL:-w4a8_gemm_n128}" -c 1 --section SpeedOfLight --section WarpStateStats \
      --section ComputeWorkloadAnalysis --section Occupancy --section SchedulerStats --section MemoryWorkloadAnalysis \
      dotnet $G/bench/Nibble.Bench.dll gemm --shapes ${NCU_SHAPE:-28672:4096} --ms ${NCU_M:-2048} --iters 3 --out /tmp/ncu-out > "$OUT/ncu.txt" 2>&1
  grep -E "Throughput|Stall|Warp Cycles|Issued|Eligible|Active Warps|Registers|Theoretical Occ|Achieved Occ|Pipe|Tensor" "$OUT/ncu.txt" | head -60
fi
echo "kernels checked: $(grep -c registers "$OUT/kernels.txt") entries"; grep -iE "error|spill" "$OUT/kernels.txt" | grep -v " 0 bytes spill" | head -20
[ -f $G/cli/nibble.dll ] && dotnet $G/cli/nibble.dll doctor | tee "$OUT/doctor.txt"
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  dotnet $G/cuda-tests/Nibble.Cuda.Tests.dll -showLiveOutput -parallel none -reporter verbose ${TEST_FILTER:-} > "$OUT/tests.txt" 2>&1
  grep -E "FAIL|\[FAIL\]|Total:|rel\. Frobenius|error|scale mode|cold|warm|Exception" "$OUT/tests.txt" | tail -60
fi
if [ "${SKIP_BENCH:-0}" != 1 ]; then
  dotnet $G/bench/Nibble.Bench.dll gemm --out "$OUT" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.txt" | tail -150
fi
