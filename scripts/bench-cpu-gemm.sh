#!/usr/bin/env bash
# CPU GEMM benchmark: Nibble's blocked GEMM vs OpenBLAS cblas_sgemm in the same run.
# Installs Debian's libopenblas-dev when missing (used only by this benchmark), then writes
# bench/results/cpu-gemm-<date>.json and .md. Extra arguments go to the suite (e.g. --seconds 2).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so'; then
  echo "installing libopenblas-dev (benchmark baseline only)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q libopenblas-dev || { $SUDO apt-get update -q && $SUDO apt-get install -y -q libopenblas-dev; }
fi
dotnet build bench/Nibble.Bench -c Release -nologo -clp:ErrorsOnly
dotnet bench/Nibble.Bench/bin/Release/net10.0/Nibble.Bench.dll cpu-gemm --out bench/results "$@"
