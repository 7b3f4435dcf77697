#!/usr/bin/env bash
# The one test command: provisions this machine, builds everything, runs every test project and the tests of
# Celery's own integration suite known to pass against a Celeriac worker (scripts/celery-suite.sh --ci),
# and ends with one line "N passed, N failed". Exit code 0 only when all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/provision.sh || exit 1

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results="$root/.artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"

if ! dotnet build Celeriac.slnx -c Release -warnaserror -nologo -v q; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
for proj in tests/*Tests/*.csproj samples/Testing/*.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== $name"
  if ! timeout 1500 dotnet test "$proj" -c Release --no-build --nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
      --results-directory "$results" -- RunConfiguration.TestSessionTimeout=1500000; then
    status=1
  fi
done

# Celery 5.2.6's own integration suite against a Celeriac worker: the tests listed in
# tests/celery-suite/known-passing.txt. Its last line is "N passed, N failed", added to the totals below.
echo "== celery-suite"
scripts/celery-suite.sh --ci 2>&1 | tee "$results/celery-suite.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# Each run leaves its worker's and pytest's logs in .artifacts/celery-suite/, which the next run replaces: keep a copy.
keep_suite_logs() { rm -rf "$results/$1-logs"; cp -r .artifacts/celery-suite "$results/$1-logs" 2>/dev/null || true; }
keep_suite_logs celery-suite
suite_logs=("$results/celery-suite.log")

# The same suite with the other result backends Celery's own CI runs it with (cache, DynamoDB, Azure Blob): each
# scripts/suite-backends/<name>.sh starts its server, runs the tests of tests/celery-suite/known-passing-<name>.txt
# and ends with "N passed, N failed" as well.
for script in scripts/suite-backends/*.sh; do
  [ -f "$script" ] || continue
  name=$(basename "$script" .sh)
  echo "== celery-suite ($name)"
  bash "$script" --ci 2>&1 | tee "$results/celery-suite-$name.log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  keep_suite_logs "celery-suite-$name"
  suite_logs+=("$results/celery-suite-$name.log")
done

# The NativeAOT sample, published with trim and AOT warnings as errors and run: one test, counted as the suites are.
echo "== aot-sample"
if bash scripts/aot-sample.sh > "$results/aot-sample.log" 2>&1; then aot="1 passed, 0 failed"; else aot="0 passed, 1 failed"; fi
echo "$aot" >> "$results/aot-sample.log"
cat "$results/aot-sample.log"
suite_logs+=("$results/aot-sample.log")

passed=0
failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n 1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* error="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0} + ${e:-0}))
done

# A test project that crashed writes no result file: count it as a failure, not as nothing.
projects=$(ls tests/*Tests/*.csproj samples/Testing/*.csproj | wc -l)
reports=$(ls "$results"/*.trx 2>/dev/null | wc -l)
if [ "$reports" -lt "$projects" ]; then
  failed=$((failed + projects - reports))
  status=1
fi

# Each suite run's counts; without its final line it broke before counting: one failure.
for log in "${suite_logs[@]}"; do
  suite_counts=$(tail -n 1 "$log")
  if [[ $suite_counts =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
  else
    failed=$((failed + 1))
    status=1
  fi
done

# The failed tests by name, with the first lines of each one's message, so that a CI log's tail says what broke.
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  /usr/bin/python3 - "$trx" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
for r in ET.parse(sys.argv[1]).getroot().iterfind(".//t:UnitTestResult", ns):
    if r.get("outcome") not in ("Failed", "Error"):
        continue
    message = r.findtext("t:Output/t:ErrorInfo/t:Message", "", ns).strip().splitlines()
    # The first lines say which assertion and, for xunit's, the expected and actual values.
    print(f"FAILED {r.get('testName')}: {' | '.join(line.strip() for line in message[:4])[:500]}")
PY
done
for log in "${suite_logs[@]}"; do
  grep -E '^(FAILED|ERROR) ' "$log" | head -n 20
done

[ "$failed" -gt 0 ] && status=1
echo "$passed passed, $failed failed"
exit $status
