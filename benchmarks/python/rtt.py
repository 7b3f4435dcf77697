"""Round trips of a Python Celery client: add.delay(i, i).get(), one at a time, WARMUP then SAMPLES timed.

    CELERY_BROKER_URL=... CELERY_RESULT_BACKEND=... PYTHONPATH=... /usr/bin/python3 rtt.py --samples 1000

A Celery worker must be consuming the same broker. The first warm-up call waits up to --ready-timeout seconds
(the worker may still be starting); every other call up to 10 s. Prints one JSON line with the sorted times:
{"samples": N, "ms": [...]}.
"""
import argparse
import json
import time

from interop_tasks import add


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    args = parser.parse_args()

    ms = []
    for i in range(-args.warmup, args.samples):
        timeout = args.ready_timeout if i == -args.warmup else 10.0
        start = time.perf_counter()
        value = add.delay(i, i).get(timeout=timeout)
        elapsed = (time.perf_counter() - start) * 1000.0
        if value != 2 * i:
            raise SystemExit("rtt: tasks.add(%d, %d) returned %r" % (i, i, value))
        if i >= 0:
            ms.append(elapsed)
    ms.sort()
    print(json.dumps({"samples": len(ms), "ms": ms}), flush=True)


if __name__ == "__main__":
    main()
