"""Publish rate of a Python Celery client: WARMUP then COUNT add.delay(i, i) calls in one loop.

    CELERY_BROKER_URL=... CELERY_RESULT_BACKEND=... PYTHONPATH=... /usr/bin/python3 publish.py --count 20000

With a result backend configured, as a client that wants its results is; on Redis each delay() also
subscribes to the task's result channel (Celery's RedisBackend.on_task_call), and with rpc:// declares the reply
queue again (RPCBackend.on_task_call; its Queue never caches the declaration). Prints one JSON line:
{"count": N, "seconds": S, "rate": R}.
"""
import argparse
import json
import time

from interop_tasks import add


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=120.0)
    args = parser.parse_args()

    for i in range(args.warmup):
        add.delay(i, i)

    start = time.perf_counter()
    for i in range(args.count):
        add.delay(i, i)
        if i % 1000 == 0 and time.perf_counter() - start > args.time_limit:
            raise SystemExit("publish: %d of %d sent in %.0f s: time limit" % (i, args.count, args.time_limit))
    seconds = time.perf_counter() - start
    print(json.dumps({"count": args.count, "seconds": seconds, "rate": args.count / seconds}), flush=True)


if __name__ == "__main__":
    main()
