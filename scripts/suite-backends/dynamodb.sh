#!/usr/bin/env bash
# Runs Celery 5.2.6's own integration suite (scripts/celery-suite.sh) with a DynamoDB result backend, as Celery's CI
# does (dynamodb://@localhost:PORT): a private dynalite (the npm DynamoDB emulator that scripts/provision.sh installs
# into tests/emulators/node_modules) on a free 127.0.0.1 port with its data in a temporary folder, stopped at the end.
#
#   scripts/suite-backends/dynamodb.sh --ci          the tests in tests/celery-suite/known-passing-dynamodb.txt
#   scripts/suite-backends/dynamodb.sh [pytest args] as scripts/celery-suite.sh (no args: the whole suite)
#
# Output is celery-suite.sh's (its last line "N passed, N failed"), and so is the exit code. Both sides get fixed dummy
# AWS credentials and region from the environment; nothing reaches AWS (the endpoint is the emulator, the instance
# metadata lookups are off).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
py=/usr/bin/python3
node=/usr/bin/node
dynalite="$root/tests/emulators/node_modules/dynalite/cli.js"

fail() {
  echo "dynamodb-suite: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}

[ -x "$node" ] || fail "$node is missing: run scripts/provision.sh"
[ -f "$dynalite" ] || fail "$dynalite is missing: run scripts/provision.sh (npm ci in tests/emulators)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/dynamodb-suite.XXXXXX") || fail "no temporary folder"
dynalite_pid=""
cleanup() {
  if [ -n "$dynalite_pid" ]; then
    kill -TERM "$dynalite_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$dynalite_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dynalite_pid" 2>/dev/null
    wait "$dynalite_pid" 2>/dev/null
    dynalite_pid=""
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
  tmp=""
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port; one taken meanwhile: try another.
port=""
for _ in 1 2 3; do
  candidate=$("$py" "$root/tests/celery-suite/suite_tool.py" free-port) || fail "no free port"
  "$node" "$dynalite" --host 127.0.0.1 --port "$candidate" --path "$tmp/data" \
    --createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$tmp/dynalite.log" 2>&1 &
  dynalite_pid=$!
  for _ in $(seq 100); do
    if "$py" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 0.5).close()" "$candidate" 2>/dev/null; then
      port=$candidate
      break
    fi
    kill -0 "$dynalite_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill -KILL "$dynalite_pid" 2>/dev/null
  wait "$dynalite_pid" 2>/dev/null
  dynalite_pid=""
done
[ -n "$port" ] || { cat "$tmp/dynalite.log" >&2; fail "dynalite did not start"; }
echo "dynamodb-suite: dynalite on 127.0.0.1:$port"

export AWS_ACCESS_KEY_ID=celeriac AWS_SECRET_ACCESS_KEY=celeriac AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
CELERY_SUITE_BACKEND="dynamodb://@localhost:$port" \
  CELERY_SUITE_KNOWN="${CELERY_SUITE_KNOWN:-$root/tests/celery-suite/known-passing-dynamodb.txt}" \
  "$root/scripts/celery-suite.sh" "$@"
rc=$?
cleanup
exit $rc
