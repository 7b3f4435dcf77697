#!/usr/bin/env bash
# Runs Celery 5.2.6's own integration suite (a read-only copy at /work/shared/celery-suite, or $CELERY_SUITE_DIR)
# against a Celeriac worker, and ends with one line "N passed, N failed". Exit code 0 only when none failed.
#
#   scripts/celery-suite.sh [pytest args]   e.g. test_canvas.py, t/integration/test_tasks.py::test_tasks::test_fail,
#                                           /work/shared/celery-suite/t/integration/test_canvas.py -k chord;
#                                           no file or node id: the whole suite (t/integration)
#   scripts/celery-suite.sh --ci            only the tests in tests/celery-suite/known-passing.txt (one node id a
#                                           line), so that one of them failing again turns CI red; a test Celery
#                                           marks @flaky may run again, up to 5 times, as in Celery's own CI
#
# What it does: starts a private redis-server on a free 127.0.0.1 port in a temporary folder; builds and starts
# tests/Celeriac.SuiteWorker (C# versions of every task of t/integration/tasks.py) on it as broker and result backend,
# named as Celery's test worker is (gen<pytest's pid>@<host>), and waits until it answers; copies the suite to the
# temporary folder, where conftest.py gets two edits (tests/celery-suite/suite_tool.py: the Celeriac worker instead of
# Celery's in-process one, and get_redis_connection() on the private port); runs Debian's pytest (/usr/bin/python3).
# The worker, Redis and the folder go at the end; the worker's log, pytest's output and the outcomes are kept in
# .artifacts/celery-suite/.
#
# The counts are of test items (node ids): a test with a failed subtest is one failed test; skipped and xfailed tests
# are not counted; xpassed ones count as passed. See suite_tool.py summarize.
#
# Settings: CELERY_SUITE_DIR (the suite), CELERY_SUITE_CONCURRENCY (the worker's, default 4: Celery's test worker runs
# one process, and test_expired/test_revoked need its queue to fill up behind 4 sleeping tasks), CELERY_SUITE_BUDGET
# (seconds for the whole pytest run; default 900 with --ci, 7200 without), CELERY_SUITE_BACKEND (the result backend
# URL of the worker and of TEST_BACKEND, default the private Redis; its server is the caller's to start, as Celery's
# CI runs the suite with cache+pylibmc://, dynamodb:// and azureblockblob:// backends), CELERY_SUITE_KNOWN (the list
# --ci runs, default tests/celery-suite/known-passing.txt).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

suite=${CELERY_SUITE_DIR:-/work/shared/celery-suite}
tools="$root/tests/celery-suite"
known=${CELERY_SUITE_KNOWN:-$tools/known-passing.txt}
project="tests/Celeriac.SuiteWorker/Celeriac.SuiteWorker.csproj"
dll="$root/tests/Celeriac.SuiteWorker/bin/Release/net10.0/Celeriac.SuiteWorker.dll"
artifacts="$root/.artifacts/celery-suite"
py=/usr/bin/python3
concurrency=${CELERY_SUITE_CONCURRENCY:-4}

ci=0
if [ "${1:-}" = "--ci" ]; then
  ci=1
  shift
fi
budget=${CELERY_SUITE_BUDGET:-$([ $ci -eq 1 ] && echo 900 || echo 7200)}
reruns=$([ $ci -eq 1 ] && echo "" || echo "-p no:rerunfailures")

tmp=""
worker_pid=""
# shellcheck source=scripts/private-redis.sh
. "$root/scripts/private-redis.sh"

# Stops the worker (warm, then cold, then killed) and Redis, keeps the logs, removes the folder. Silent, idempotent.
cleanup() {
  if [ -n "$tmp" ] && [ -s "$tmp/pytest.pid" ]; then
    pytest_pid=$(cat "$tmp/pytest.pid")
    kill -INT "$pytest_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pytest_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pytest_pid" 2>/dev/null
    rm -f "$tmp/pytest.pid"
  fi
  if [ -z "$worker_pid" ] && [ -n "$tmp" ] && [ -s "$tmp/worker.pid" ]; then
    worker_pid=$(cat "$tmp/worker.pid")
  fi
  if [ -n "$worker_pid" ]; then
    kill -TERM "$worker_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$worker_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$worker_pid" 2>/dev/null
    wait "$worker_pid" 2>/dev/null
    worker_pid=""
  fi
  stop_private_redis
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    mkdir -p "$artifacts"
    for f in worker.log pytest.log report.jsonl redis.log build.log; do
      rm -f "$artifacts/$f"
      [ -f "$tmp/$f" ] && cp "$tmp/$f" "$artifacts/$f"
    done
    rm -rf "$tmp"
    tmp=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A failure before any test ran: one reason, the logs, and one failed item.
fail() {
  echo "celery-suite: $*" >&2
  cleanup
  echo "0 passed, 1 failed"
  exit 1
}

[ -d "$suite/t/integration" ] || fail "no suite at $suite (set CELERY_SUITE_DIR)"
[ -x "$py" ] || fail "$py is missing (scripts/provision.sh installs Debian's Python with Celery)"
for m in celery redis pytest pytest_subtests pytest_timeout; do
  "$py" -c "import $m" 2>/dev/null || fail "$py has no module $m: run scripts/provision.sh"
done
command -v redis-server >/dev/null || fail "redis-server is missing: run scripts/provision.sh"
[ $ci -eq 0 ] || [ -s "$known" ] || fail "no $known"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/celery-suite.XXXXXX") || fail "no temporary folder"

# 1. Redis, private: a free loopback port, its own folder, no persistence. A port taken meanwhile: try another.
start_private_redis "$tmp/redis" "$tmp/redis.log" || fail "redis-server did not start (see .artifacts/celery-suite/redis.log)"
port=$redis_port
url="redis://127.0.0.1:$port/0"
backend=${CELERY_SUITE_BACKEND:-$url}
echo "celery-suite: redis-server on 127.0.0.1:$port; result backend ${backend%%://*}://"

# 2. The Celeriac worker with the suite's tasks, built now and started in step 4.
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
if ! dotnet build "$project" -c Release -warnaserror -nologo -v q >"$tmp/build.log" 2>&1; then
  grep -E "error|Error" "$tmp/build.log" | sort -u | head -n 20 >&2
  fail "the build of $project failed"
fi
host=$("$py" -c 'import socket; print(socket.gethostname())')

# 3. The suite's copy, with Celeriac's fixture and the private Redis port in its conftest.py.
"$py" "$tools/suite_tool.py" prepare "$suite" "$tmp/suite" || fail "could not prepare the suite's copy"

args=()
if [ $ci -eq 1 ]; then
  mapfile -t args < <("$py" "$tools/suite_tool.py" node-ids "$known")
  [ ${#args[@]} -gt 0 ] || fail "$known lists no test"
  args+=("$@")
else
  paths=0
  for a in "$@"; do
    case "$a" in
      "$suite"/*) a=${a#"$suite"/}; paths=1 ;;
      t/*) paths=1 ;;
      integration/*) a="t/$a"; paths=1 ;;
      test_*.py | test_*.py::*) a="t/integration/$a"; paths=1 ;;
    esac
    args+=("$a")
  done
  [ $paths -eq 1 ] || args+=(t/integration)
fi

# 4. Debian's pytest, every test boundedly (--timeout, the budget). Reruns are off (a failing test is reported once),
# except with --ci: there, as in Celery's own CI, a test Celery marks @flaky (timing-bound: it inspects a worker at
# once, or waits 60 s on a loaded machine) runs again up to 5 times, and the summary lists each rerun with its cause.
# Celery's test worker runs inside pytest's process and is named anon_nodename(), gen<pytest's pid>@<host>, which
# test_inspect.py looks up. So the subshell that becomes pytest (exec) starts the worker with its own pid in that
# name, waits until it answers, starts a watchdog for the budget (SIGINT: pytest stops and reports), then execs pytest.
report="$tmp/report.jsonl"
: >"$report"
# The pipeline runs in the background and the script waits for it, so that a SIGINT or SIGTERM to the script is
# handled at once (cleanup stops pytest, the worker and Redis); pytest's exit code goes through pytest.rc.
(
  (
    me=$BASHPID
    echo "$me" >"$tmp/pytest.pid"
    (cd "$tmp" && REDIS_HOST=127.0.0.1 REDIS_PORT="$port" exec dotnet "$dll" worker -b "$url" --result-backend "$backend" \
      -P async -c "$concurrency" -n "gen$me@$host" -l info) >"$tmp/worker.log" 2>&1 &
    echo $! >"$tmp/worker.pid"
    if ! "$py" "$tools/suite_tool.py" wait "$url" "$!" 60 "$backend"; then
      touch "$tmp/worker.failed"
      exit 97
    fi
    (
      for _ in $(seq "$budget"); do
        sleep 1
        kill -0 "$me" 2>/dev/null || exit 0
      done
      echo "celery-suite: the budget of $budget s is spent: interrupting pytest" >&2
      kill -INT "$me" 2>/dev/null
      for _ in $(seq 60); do
        sleep 1
        kill -0 "$me" 2>/dev/null || exit 0
      done
      kill -KILL "$me" 2>/dev/null
    ) &
    cd "$tmp/suite" &&
      exec env TEST_BROKER="$url" TEST_BACKEND="$backend" REDIS_HOST=127.0.0.1 REDIS_PORT="$port" \
        PYTHONPATH="$tools" PYTHONDONTWRITEBYTECODE=1 CELERIAC_SUITE_REPORT="$report" \
        "$py" -m pytest "${args[@]}" -p celery.contrib.pytest -p celeriac_report -p no:cacheprovider \
        $reruns -o addopts= --timeout=120 -v -rfE --disable-warnings
  )
  echo $? >"$tmp/pytest.rc"
) 2>&1 | tee "$tmp/pytest.log" &
wait $!
rc=$(cat "$tmp/pytest.rc" 2>/dev/null || echo 3)
rm -f "$tmp/pytest.pid"
worker_pid=$(cat "$tmp/worker.pid" 2>/dev/null)
if [ -e "$tmp/worker.failed" ]; then
  tail -n 30 "$tmp/worker.log" >&2
  fail "the Celeriac worker did not answer"
fi

expect=()
[ $ci -eq 1 ] && expect=(--expect "$known")
summary=$("$py" "$tools/suite_tool.py" summarize "$report" "${expect[@]}" --rc "$rc")
cleanup
echo "celery-suite: logs in .artifacts/celery-suite/ (worker.log, pytest.log, report.jsonl)"
echo "$summary"
case "$(tail -n 1 <<<"$summary")" in
  *" passed, 0 failed") exit 0 ;;
  *) exit 1 ;;
esac
