"""Helpers for the interop tests' Python client snippets.

The snippets import the app from interop_tasks (broker and backend from CELERY_BROKER_URL and
CELERY_RESULT_BACKEND) and print what Python observed as one JSON document on stdout.
"""
import json

from interop_tasks import app


def outcome(result, timeout=30):
    """Waits for one AsyncResult and describes it as Python sees it: state, value and its type, or the error."""
    entry = {"id": result.id}
    try:
        value = result.get(timeout=timeout, propagate=True)
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
