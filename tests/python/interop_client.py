"""Helpers for the interop tests' Python client snippets.

The snippets import the app from interop_tasks (broker and backend from CELERY_BROKER_URL and
CELERY_RESULT_BACKEND) and print what Python observed as one JSON document on stdout.
"""
import json
import time

from celery import states

from interop_tasks import app


def outcome(result, timeout=30, follow_parents=True, poll=False):
    """Waits for one AsyncResult and describes it as Python sees it: state, value and its type, or the error.
    With follow_parents (Celery's default) get() raises a failed parent's error as soon as it sees it; without, it
    waits for this result's own state. With poll, it first reads the stored state every 0.1 s until it is ready, so
    that a pub/sub notification get() missed cannot pass for a result stored late."""
    entry = {"id": result.id}
    if poll:
        deadline = time.monotonic() + timeout
        while (time.monotonic() < deadline
               and app.backend.get_task_meta(result.id, cache=False)["status"] not in states.READY_STATES):
            time.sleep(0.1)
        timeout = 1
    try:
        # Passed only when off: a ResultSet's get() has no such parameter.
        value = result.get(timeout=timeout, propagate=True, **({} if follow_parents else {"follow_parents": False}))
        entry["value"] = value
        entry["type"] = type(value).__name__
    except Exception as e:  # noqa: BLE001 - the test asserts the type
        entry["exc_type"] = type(e).__name__
        entry["exc_module"] = type(e).__module__
        entry["exc_message"] = str(e)
    entry["state"] = result.state
    meta = app.backend.get_task_meta(result.id)
    done = meta.get("date_done")
    entry["date_done"] = done.isoformat() if hasattr(done, "isoformat") else done
    return entry


def report(results, timeout=30):
    """Prints the outcomes of AsyncResults (a list) as a JSON list, in order."""
    print(json.dumps([outcome(r, timeout) for r in results]))


def send_with_priorities(task, queue, spec):
    """Sends task(value) for each [value, priority] of spec (priority None: none given), in order; returns the results."""
    return [task.apply_async((value,), queue=queue, **({} if priority is None else {"priority": priority}))
            for value, priority in spec]


def lineage(result, timeout=30):
    """The outcomes of a result and of each of its parents in turn, last first: a chain's result walks back to its
    first step, a chord's body to its header (a GroupResult, described with its members' outcomes)."""
    out = []
    node = result
    while node is not None:
        if hasattr(node, "results"):
            out.append({"group": node.id, "members": [outcome(r, timeout) for r in node.results]})
        else:
            out.append(outcome(node, timeout))
        node = node.parent
    return out
