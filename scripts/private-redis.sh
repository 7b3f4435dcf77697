# Sourced, not run: a redis-server of the calling script's own, for scripts/celery-suite.sh and scripts/aot-sample.sh.
#   start_private_redis DIR LOG  starts one on a free 127.0.0.1 port (another if that port is taken meanwhile), in DIR,
#                                without persistence, logging to LOG; sets redis_port and redis_pid; fails after 3 tries.
#   stop_private_redis           stops it (SIGTERM, SIGKILL after 5 s); silent, idempotent.
redis_port=""
redis_pid=""

start_private_redis() {
  local dir=$1 log=$2 candidate
  local free_port="$(dirname "${BASH_SOURCE[0]}")/../tests/celery-suite/suite_tool.py"
  redis_port=""
  for _ in 1 2 3; do
    candidate=$(/usr/bin/python3 "$free_port" free-port) || return 1
    mkdir -p "$dir"
    redis-server --port "$candidate" --bind 127.0.0.1 --protected-mode yes --dir "$dir" \
      --save "" --appendonly no --daemonize no --logfile "$log" >/dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 100); do
      if [ "$(redis-cli -h 127.0.0.1 -p "$candidate" ping 2>/dev/null)" = "PONG" ]; then
        redis_port=$candidate
        return 0
      fi
      kill -0 "$redis_pid" 2>/dev/null || break
      sleep 0.1
    done
    stop_private_redis
  done
  return 1
}

stop_private_redis() {
  if [ -n "$redis_pid" ]; then
    # '|| true': callers under set -e (aot-sample.sh) must not stop halfway through their cleanup.
    kill -TERM "$redis_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
  fi
  return 0
}
