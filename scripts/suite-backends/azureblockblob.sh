#!/usr/bin/env bash
# Runs Celery 5.2.6's integration suite against a Celeriac worker whose result backend is Celery's Azure Block Blob
# backend, as Celery's CI does (TEST_BACKEND=azureblockblob://...), on a private azurite (blob service) started here
# on a free 127.0.0.1 port in a temporary folder, with telemetry off; stopped and removed at the end.
#
#   scripts/suite-backends/azureblockblob.sh            the tests of tests/celery-suite/known-passing-azureblockblob.txt
#                                                       (scripts/celery-suite.sh --ci); its last line "N passed, N failed"
#   scripts/suite-backends/azureblockblob.sh [args]     scripts/celery-suite.sh with these arguments instead (e.g. none
#                                                       but a file: test_tasks.py; the whole suite: t/integration)
#
# The URL also goes to AZUREBLOCKBLOB_URL, which Celery's test_backend.py needs (its Azure tests skip without it).
# Exit code: celery-suite.sh's (0 only when none failed).
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
py=/usr/bin/python3
azurite="$root/tests/emulators/node_modules/azurite/dist/src/blob/main.js"
account=devstoreaccount1
# Azurite's well-known development key (published by Microsoft; not a secret).
key="Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

tmp=""
azurite_pid=""
cleanup() {
  if [ -n "$azurite_pid" ]; then
    kill -TERM "$azurite_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$azurite_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$azurite_pid" 2>/dev/null
    wait "$azurite_pid" 2>/dev/null
    azurite_pid=""
  fi
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    mkdir -p "$root/.artifacts/celery-suite"
    [ -f "$tmp/azurite.log" ] && cp "$tmp/azurite.log" "$root/.artifacts/celery-suite/azurite.log"
    rm -rf "$tmp"
    tmp=""
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "azureblockblob suite: $*" >&2
  cleanup
  echo "0 passed, 1 failed"
  exit 1
}

command -v node >/dev/null || fail "node is missing: run scripts/provision.sh"
[ -f "$azurite" ] || fail "$azurite is missing: run scripts/provision.sh (npm ci in tests/emulators)"
"$py" -c "import azure.storage.blob" 2>/dev/null || fail "$py has no azure.storage.blob: run scripts/provision.sh (python3-azure-storage)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/celery-suite-azurite.XXXXXX") || fail "no temporary folder"

# A free loopback port; if another process takes it meanwhile, azurite exits and the next port is tried.
port=""
for _ in 1 2 3; do
  candidate=$("$py" "$root/tests/celery-suite/suite_tool.py" free-port) || fail "no free port"
  mkdir -p "$tmp/data"
  node "$azurite" --blobHost 127.0.0.1 --blobPort "$candidate" --location "$tmp/data" \
    --disableTelemetry --skipApiVersionCheck --silent >"$tmp/azurite.log" 2>&1 &
  azurite_pid=$!
  for _ in $(seq 150); do
    # Any HTTP answer (an unsigned request is refused) means the blob service listens.
    if "$py" -c "import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen('http://127.0.0.1:$candidate/$account?comp=list', timeout=1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)" 2>/dev/null; then
      port=$candidate
      break
    fi
    kill -0 "$azurite_pid" 2>/dev/null || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill -KILL "$azurite_pid" 2>/dev/null
  wait "$azurite_pid" 2>/dev/null
  azurite_pid=""
done
[ -n "$port" ] || fail "azurite did not start (see .artifacts/celery-suite/azurite.log)"
echo "azureblockblob suite: azurite (blob service) on 127.0.0.1:$port"

url="azureblockblob://DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$key;BlobEndpoint=http://127.0.0.1:$port/$account;"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--ci)
AZUREBLOCKBLOB_URL="$url" CELERY_SUITE_BACKEND="$url" \
  CELERY_SUITE_KNOWN="${CELERY_SUITE_KNOWN:-$root/tests/celery-suite/known-passing-azureblockblob.txt}" \
  scripts/celery-suite.sh "${args[@]}" &
wait $!
rc=$?
cleanup
exit $rc
