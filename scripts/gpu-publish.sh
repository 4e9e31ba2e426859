#!/usr/bin/env bash
# Publishes the GPU tests and the benchmark (framework-dependent) plus the .NET runtime tarball, kernel sources and
# scripts/gpu-run.sh into $DEST (default: /work/main/.gpu when it exists, else $REPO/.gpu; .gpu is git-ignored),
# then prints the device command. Usage: scripts/gpu-publish.sh [DEST]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$([ -d /work/main ] && echo /work/main/.gpu || echo "$REPO/.gpu")}
mkdir -p "$DEST"
if [ ! -f "$DEST/dotnet.tar.xz" ]; then
  DOTNET_DIR=$(dirname "$(readlink -f "$(command -v dotnet)")")
  tar -C "$DOTNET_DIR" -cf - dotnet host/fxr shared/Microsoft.NETCore.App | xz -T0 -6 > "$DEST/dotnet.tar.xz"
fi
rm -rf "$DEST/cuda-tests" "$DEST/bench" "$DEST/kernels" "$DEST/cli"
dotnet publish "$REPO/tests/Nibble.Cuda.Tests" -c Release -o "$DEST/cuda-tests" --nologo -v q
dotnet publish "$REPO/bench/Nibble.Bench" -c Release -o "$DEST/bench" --nologo -v q
# The CLI (16 MB) only with PUBLISH_CLI=1: the device call carries at most 64 MiB with the checkout.
[ "${PUBLISH_CLI:-0}" = 1 ] && dotnet publish "$REPO/src/Nibble.Cli" -c Release -o "$DEST/cli" --nologo -v q
mkdir -p "$DEST/kernels" && cp "$REPO"/src/Nibble.Cuda/Kernels/*.cu "$REPO"/src/Nibble.Cuda/Kernels/*.cuh "$DEST/kernels/"
cp "$REPO/scripts/gpu-run.sh" "$REPO/scripts/gpu-evidence.sh" "$REPO/scripts/gpu-variants.sh" "$DEST/"
du -sh "$DEST"
echo "device commands (run tool, carry [\".gpu\"]):  bash .gpu/gpu-run.sh   (kernel checks + tests + gemm), or  bash .gpu/gpu-evidence.sh   (tests, full gemm table, e2e, ops)"
