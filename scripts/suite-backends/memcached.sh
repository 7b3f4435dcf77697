#!/usr/bin/env bash
# Runs Celery 5.2.6's own integration suite against a Celeriac worker with Celery's cache result backend on memcached,
# as Celery's CI runs it with TEST_BACKEND=cache+pylibmc://: starts a private memcached on a free 127.0.0.1 port, runs
# scripts/celery-suite.sh with CELERY_SUITE_BACKEND=cache+memcached://127.0.0.1:PORT/ (the worker's result backend
# and the suite's TEST_BACKEND; the broker stays celery-suite.sh's private Redis), passes its output through (its last
# line is "N passed, N failed"), stops memcached and exits with celery-suite.sh's code.
#
#   scripts/suite-backends/memcached.sh           the --ci list tests/celery-suite/known-passing-memcached.txt
#   scripts/suite-backends/memcached.sh ARGS...   celery-suite.sh ARGS (e.g. test_tasks.py test_canvas.py)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
py=/usr/bin/python3
memcached=/usr/bin/memcached

if [ ! -x "$memcached" ]; then
  echo "memcached-suite: $memcached is missing (scripts/provision.sh installs memcached)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

mc_pid=""
suite_pid=""
stop_memcached() {
  if [ -n "$mc_pid" ]; then
    kill -TERM "$mc_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$mc_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$mc_pid" 2>/dev/null
    wait "$mc_pid" 2>/dev/null
    mc_pid=""
  fi
}
trap stop_memcached EXIT
# celery-suite.sh cleans up after itself on TERM (its worker, Redis, pytest); then memcached goes.
trap '[ -n "$suite_pid" ] && kill -TERM "$suite_pid" 2>/dev/null && wait "$suite_pid" 2>/dev/null; exit 130' INT TERM

# memcached refuses to run as root unless told a user.
user=()
[ "$(id -u)" = 0 ] && user=(-u root)

# A free loopback port; one taken meanwhile: try another.
port=""
for _ in 1 2 3; do
  candidate=$("$py" "$root/tests/celery-suite/suite_tool.py" free-port) || break
  "$memcached" -l 127.0.0.1 -p "$candidate" -U 0 -m 64 -c 1024 "${user[@]}" >/dev/null 2>&1 &
  mc_pid=$!
  for _ in $(seq 100); do
    if "$py" - "$candidate" <<'PY' 2>/dev/null; then
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"version\r\n")
sys.exit(0 if s.recv(64).startswith(b"VERSION") else 1)
PY
      port=$candidate
      break
    fi
    kill -0 "$mc_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  stop_memcached
done
if [ -z "$port" ]; then
  echo "memcached-suite: memcached did not start" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
echo "memcached-suite: memcached on 127.0.0.1:$port"

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--ci)
CELERY_SUITE_BACKEND="cache+memcached://127.0.0.1:$port/" \
  CELERY_SUITE_KNOWN="${CELERY_SUITE_KNOWN:-$root/tests/celery-suite/known-passing-memcached.txt}" \
  scripts/celery-suite.sh "${args[@]}" &
suite_pid=$!
wait "$suite_pid"
rc=$?
suite_pid=""
stop_memcached
exit $rc
