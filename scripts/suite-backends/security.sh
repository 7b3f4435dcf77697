#!/usr/bin/env bash
# Runs Celery 5.2.6's own t/integration/test_security.py against a Celeriac worker with message signing on (Celery's
# auth serializer). The test makes its key and certificate at run time in tempfile.mkdtemp(), and its client then signs
# with them, so the worker must trust a certificate that does not exist when it starts: pytest's TMPDIR is a folder
# made here, the worker's trusted store is the glob <that folder>/tmp*/*.pem, which the worker reads again when a
# signer is unknown (at most once per 5 s). The worker signs what it sends (chains, retries) with its own key, made
# here with openssl and put in that glob too. It runs on its own, not with the rest of the suite: test_security.py
# turns the session's client app to task_serializer='auth' for every test after it, and a signing worker refuses the
# unsigned messages of the others.
#
#   scripts/suite-backends/security.sh           the --ci list tests/celery-suite/known-passing-security.txt
#   scripts/suite-backends/security.sh ARGS...   celery-suite.sh ARGS (e.g. test_security.py)
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

if ! command -v openssl >/dev/null; then
  echo "security-suite: openssl is missing (scripts/provision.sh installs it)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/celery-suite-security.XXXXXX") || { echo "0 passed, 1 failed"; exit 1; }
suite_pid=""
trap 'rm -rf "$dir"' EXIT
trap '[ -n "$suite_pid" ] && kill -TERM "$suite_pid" 2>/dev/null && wait "$suite_pid" 2>/dev/null; exit 130' INT TERM

mkdir -p "$dir/tmp" "$dir/tmp/tmpceleriacworker"
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=celeriac suite worker" \
    -keyout "$dir/worker.key" -out "$dir/tmp/tmpceleriacworker/worker.pem" >/dev/null 2>&1; then
  echo "security-suite: openssl could not make the worker's key" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
echo "security-suite: trusted store $dir/tmp/tmp*/*.pem"

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--ci)
TMPDIR="$dir/tmp" \
  CELERIAC_SECURITY_KEY="$dir/worker.key" \
  CELERIAC_SECURITY_CERTIFICATE="$dir/tmp/tmpceleriacworker/worker.pem" \
  CELERIAC_SECURITY_CERT_STORE="$dir/tmp/tmp*/*.pem" \
  CELERY_SUITE_KNOWN="${CELERY_SUITE_KNOWN:-$root/tests/celery-suite/known-passing-security.txt}" \
  scripts/celery-suite.sh "${args[@]}" &
suite_pid=$!
wait "$suite_pid"
rc=$?
suite_pid=""
exit $rc
