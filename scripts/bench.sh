#!/usr/bin/env bash
# Runs the benchmark (benchmarks/Celeriac.Benchmarks) as a worker is deployed: `dotnet publish` makes it ReadyToRun,
# so the worker processes it starts run precompiled code from their first task instead of the JIT's first tier.
# It also publishes samples/AotWorker with NativeAOT (about a minute the first time; clang from scripts/provision.sh)
# and passes it as --aot-worker, so that the Redis comparison also times a NativeAOT worker.
# Every argument goes to the benchmark, e.g.: scripts/bench.sh --transport redis --count 20000 --markdown
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.artifacts/bench"
dotnet publish "$root/benchmarks/Celeriac.Benchmarks" -c Release -nologo -v q -o "$out" >&2
aot=()
linker="clang"
command -v clang >/dev/null 2>&1 || linker="clang-14"
if dotnet publish "$root/samples/AotWorker" -c Release -r linux-x64 -nologo -v q -p:CppCompilerAndLinker="$linker" -o "$root/.artifacts/bench-aot" >&2; then
  aot=(--aot-worker "$root/.artifacts/bench-aot/AotWorker")
else
  echo "bench.sh: the NativeAOT publish of samples/AotWorker failed; the Redis comparison runs without its NativeAOT row" >&2
fi
exec dotnet "$out/Celeriac.Benchmarks.dll" "${aot[@]}" "$@"
