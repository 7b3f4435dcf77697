#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine. Idempotent: installs only what is missing.
set -euo pipefail

# Debian packages the test suites use: procps (ps, kill for the process tests), python3-celery
# (real Celery 5.2 on the other end of the interop tests, run as /usr/bin/python3) with python3-redis
# (its Redis client), redis-server and rabbitmq-server (started by the fixtures on free loopback ports,
# each in its own temporary folder and, for RabbitMQ, with its own node name and Erlang cookie, as the
# current user; a system service the package may start is not used). Servers join this list with the
# suites that start them. Debian's pytest with the plugins Celery's own integration suite uses
# (python3-pytest-subtests, -rerunfailures, -timeout) runs that suite against a Celeriac worker
# (scripts/celery-suite.sh). tmux runs Celery's curses monitor (celery events) in a terminal the remote-control
# interop tests read. postgresql, mariadb-server and memcached are the servers of the PostgreSQL transport and of
# the database and cache result backends (started by the fixtures as the others are); Python Celery reaches them,
# and S3, DynamoDB and Azure Blob, through python3-sqlalchemy, -psycopg2, -pymysql, -pylibmc, -boto3 and
# -azure-storage. The S3, DynamoDB and Azure emulators (s3rver, dynalite, azurite) come from the npm registry into
# tests/emulators/node_modules, at the versions of tests/emulators/package-lock.json. Debian's chromium is the browser
# the dashboard's browser tests drive with Playwright (its path is passed as the executable; nothing is downloaded).
PACKAGES=(procps python3-celery python3-redis redis-server rabbitmq-server
  python3-pytest python3-pytest-subtests python3-pytest-rerunfailures python3-pytest-timeout tmux
  postgresql mariadb-server memcached python3-sqlalchemy python3-psycopg2 python3-pymysql python3-pylibmc
  python3-boto3 python3-azure-storage nodejs chromium openssl python3-cryptography)
# The NativeAOT sample (scripts/aot-sample.sh): the native linker and zlib that ILCompiler links against.
PACKAGES+=(clang-14 zlib1g-dev)

if ! command -v dotnet >/dev/null 2>&1; then
  echo "provision: the .NET SDK (dotnet) is not on PATH; install the .NET 10 SDK first." >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "provision: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The emulators: npm ci from the lock file, once (node_modules is kept between runs on one machine).
emulators="$(dirname "$0")/../tests/emulators"
if [ ! -f "$emulators/node_modules/.package-lock.json" ] || [ "$emulators/package-lock.json" -nt "$emulators/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null 2>&1 || { echo "provision: npm is missing (it comes with Node.js 20)" >&2; exit 1; }
  echo "provision: installing the S3, DynamoDB and Azure emulators (npm ci in tests/emulators)"
  (cd "$emulators" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
