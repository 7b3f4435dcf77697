#!/usr/bin/env bash
# Runs the benchmark (benchmarks/Celeriac.Benchmarks) as a worker is deployed: `dotnet publish` makes it ReadyToRun,
# so the worker processes it starts run precompiled code from their first task instead of the JIT's first tier.
# Every argument goes to the benchmark, e.g.: scripts/bench.sh --transport redis --count 20000 --markdown
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.artifacts/bench"
dotnet publish "$root/benchmarks/Celeriac.Benchmarks" -c Release -nologo -v q -o "$out" >&2
exec dotnet "$out/Celeriac.Benchmarks.dll" "$@"
