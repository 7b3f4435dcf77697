"""The benchmark's tasks, in Python: the Quickstart's (interop_tasks) and two for the pool figures.

The same names and the same work as the C# ones in benchmarks/Celeriac.Benchmarks (BenchTasks):
    tasks.cpu(n)    sums i * i for i < n in a plain loop (CPU-bound; n = 50000 takes about 2 ms in CPython here)
    tasks.block(ms) sleeps ms milliseconds (blocking I/O stand-in) and returns ms
Run a worker with:
    /usr/bin/python3 -m celery -A bench_tasks worker -P prefork -c 2
"""
import time

from interop_tasks import add, app  # noqa: F401 (tasks.add and the app, registered on import)


@app.task(name="tasks.cpu")
def cpu(n):
    total = 0
    for i in range(n):
        total += i * i
    return total


@app.task(name="tasks.block")
def block(ms):
    time.sleep(ms / 1000.0)
    return ms
