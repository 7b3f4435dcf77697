#!/usr/bin/env bash
# Publishes samples/AotWorker with NativeAOT (trim/AOT warnings are errors: TreatWarningsAsErrors) and runs it:
# - alone, it must print the result of tasks.add(2, 3), run by its generated invoker on the in-process memory broker;
# - as a worker on a real redis-server (a free loopback port), it must run a tasks.add that a Python Celery client sends,
#   then the canvas that client sends (a chain, a group, a chord joined into Celery's celery.accumulate, celery.starmap
#   and celery.chunks, whose built-in tasks bind by reflection and return JSON the serializer has no AOT metadata for),
#   and stop cleanly on SIGTERM.
# Needs clang-14 (the native linker), zlib1g-dev, redis-server and python3-celery, which scripts/provision.sh installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$(mktemp -d)"
worker_pid=""
# shellcheck source=scripts/private-redis.sh
. "$root/scripts/private-redis.sh"
cleanup() {
  [ -n "$worker_pid" ] && kill -9 "$worker_pid" 2>/dev/null || true
  stop_private_redis
  rm -rf "$out"
}
trap cleanup EXIT
linker="clang"
command -v clang >/dev/null 2>&1 || linker="clang-14"
dotnet publish "$root/samples/AotWorker" -c Release -r linux-x64 -nologo -v q -p:CppCompilerAndLinker="$linker" -o "$out"
got="$(timeout 30 "$out/AotWorker")"
if [ "$got" != "5" ]; then
  echo "AotWorker printed '$got', expected 5" >&2
  exit 1
fi
echo "AotWorker (NativeAOT): tasks.add(2, 3) = $got"

# Bad arguments: a clear error and exit code 2, not a stack trace.
if "$out/AotWorker" --broker 2> "$out/bad.log"; then
  echo "AotWorker accepted '--broker' without a URL" >&2
  exit 1
fi
grep -q "incomplete option '--broker'" "$out/bad.log" || { echo "AotWorker's error for a bad argument: $(cat "$out/bad.log")" >&2; exit 1; }
if "$out/AotWorker" -c 2 2> "$out/bad.log"; then
  echo "AotWorker served without --broker" >&2
  exit 1
fi
grep -q "\-\-broker is required" "$out/bad.log" || { echo "AotWorker's error without --broker: $(cat "$out/bad.log")" >&2; exit 1; }

start_private_redis "$out/redis" "$out/redis.log" || { echo "redis-server did not start: $(cat "$out/redis.log" 2>/dev/null)" >&2; exit 1; }
broker="redis://127.0.0.1:$redis_port/0"
backend="redis://127.0.0.1:$redis_port/1"
"$out/AotWorker" --broker "$broker" --result-backend "$backend" -n aot@%h > "$out/worker.log" 2>&1 &
worker_pid=$!
for _ in $(seq 200); do grep -q " ready\.$" "$out/worker.log" && break; sleep 0.1; done
grep -q "^aot@.* ready\.$" "$out/worker.log" || { echo "AotWorker did not say it was ready within 20 s: $(cat "$out/worker.log")" >&2; exit 1; }

got="$(timeout 60 /usr/bin/python3 - "$broker" "$backend" <<'PY'
import sys
from celery import Celery
app = Celery(broker=sys.argv[1], backend=sys.argv[2])
print(app.send_task("tasks.add", (20, 22)).get(timeout=30))
PY
)"
if [ "$got" != "42" ]; then
  echo "A Python client's tasks.add(20, 22) on AotWorker's Redis gave '$got', expected 42; worker: $(cat "$out/worker.log")" >&2
  exit 1
fi

canvas="$(timeout 120 /usr/bin/python3 - "$broker" "$backend" <<'PY'
import sys
from celery import Celery, chain, group, chord
app = Celery(broker=sys.argv[1], backend=sys.argv[2])
s = lambda name, *args, **kwargs: app.signature(name, args=args, kwargs=kwargs)
for label, sig in [
    ("chain", chain(s("tasks.add", 1, 2), s("tasks.mul", 3))),
    ("group", group(s("tasks.add", i, i) for i in range(3))),
    ("chord", chord([s("tasks.add", 1, 1), s("tasks.add", 2, 2)], s("celery.accumulate"))),
    ("starmap", s("celery.starmap", task=s("tasks.add"), it=[(1, 2), (3, 4)])),
    ("chunks", s("celery.chunks", task=s("tasks.add"), it=[(i, i) for i in range(4)], n=2)),
]:
    try:
        print(label, sig.apply_async().get(timeout=20))
    except Exception as e:
        print(label, "failed:", type(e).__name__, str(e)[:300])
PY
)" || true
expected="chain 9
group [0, 2, 4]
chord [[2, 4]]
starmap [3, 7]"
if [ "$(head -n 4 <<<"$canvas")" != "$expected" ] || ! grep -q "^chunks \[\[" <<<"$canvas"; then
  echo "A Python client's canvas on AotWorker gave:" >&2
  echo "$canvas" >&2
  echo "expected:" >&2
  echo "$expected" >&2
  echo "chunks [[...], ...]; worker: $(tail -n 20 "$out/worker.log")" >&2
  exit 1
fi
echo "AotWorker (NativeAOT): a Python client's canvas:"
echo "$canvas"

kill -TERM "$worker_pid"
code=0
for _ in $(seq 100); do kill -0 "$worker_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$worker_pid" 2>/dev/null; then
  echo "AotWorker still running 10 s after SIGTERM" >&2
  exit 1
fi
wait "$worker_pid" || code=$?
worker_pid=""
if [ "$code" != "0" ]; then
  echo "AotWorker exited with $code after SIGTERM: $(cat "$out/worker.log")" >&2
  exit 1
fi
echo "AotWorker (NativeAOT) on redis-server: a Python client's tasks.add(20, 22) = $got; stopped by SIGTERM with exit code 0"
