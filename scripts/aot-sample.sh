#!/usr/bin/env bash
# Publishes samples/AotWorker with NativeAOT (trim/AOT warnings are errors: TreatWarningsAsErrors) and runs it:
# it must print the result of tasks.add(2, 3), run by its generated invoker on the in-process memory broker.
# Needs clang-14 (the native linker) and zlib1g-dev, which scripts/provision.sh installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
linker="clang"
command -v clang >/dev/null 2>&1 || linker="clang-14"
dotnet publish "$root/samples/AotWorker" -c Release -r linux-x64 -nologo -v q -p:CppCompilerAndLinker="$linker" -o "$out"
got="$(timeout 30 "$out/AotWorker")"
if [ "$got" != "5" ]; then
  echo "AotWorker printed '$got', expected 5" >&2
  exit 1
fi
echo "AotWorker (NativeAOT): tasks.add(2, 3) = $got"
