"""Fills the default queue with COUNT tasks.add(i, i) messages, sent the normal Celery client way.

    CELERY_BROKER_URL=redis://127.0.0.1:PORT/0 CELERY_RESULT_BACKEND=redis://127.0.0.1:PORT/1 \
        PYTHONPATH=<dir of interop_tasks.py> /usr/bin/python3 prefill.py --count 20000 [--ignore-result]

    CELERY_BROKER_URL=amqp://guest:guest@127.0.0.1:PORT/%2F CELERY_RESULT_BACKEND=rpc:// ... prefill.py --count 20000

With --task cpu or --task block it sends COUNT tasks.cpu(ARG) or tasks.block(ARG) instead (bench_tasks.py).

The benchmark drains these with a Celeriac or a Celery worker, so both read Celery's own bytes. With rpc:// each
message's reply_to is this client's oid, and Celery declares that reply queue (auto-delete, x-expires one day) as
it sends: the workers publish the results there after this script has ended. Prints one JSON line:
{"count": N, "seconds": S}.
"""
import argparse
import json
import time

from bench_tasks import add, app, block, cpu


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--ignore-result", action="store_true")
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--task", choices=["add", "cpu", "block"], default="add")
    parser.add_argument("--arg", type=int, default=0, help="n of tasks.cpu(n), ms of tasks.block(ms)")
    args = parser.parse_args()
    task = {"add": add, "cpu": cpu, "block": block}[args.task]

    start = time.perf_counter()
    # One producer for the whole run (apply_async would otherwise take one from the pool per message).
    with app.producer_or_acquire() as producer:
        for i in range(args.count):
            task.apply_async((i, i) if task is add else (args.arg,), ignore_result=args.ignore_result, producer=producer)
            if i % 1000 == 0 and time.perf_counter() - start > args.time_limit:
                raise SystemExit("prefill: %d of %d sent in %.0f s: time limit" % (i, args.count, args.time_limit))
    seconds = time.perf_counter() - start
    print(json.dumps({"count": args.count, "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
