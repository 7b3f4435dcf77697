"""The Quickstart's tasks, in Python, for the interop tests and benchmarks.

Broker and result backend come from CELERY_BROKER_URL and CELERY_RESULT_BACKEND, so one module
serves every transport. Run a worker with:
    /usr/bin/python3 -m celery -A interop_tasks worker -P threads -c 8
"""
import json
import os
import threading
import time

from celery import Celery

app = Celery(
    "interop_tasks",
    broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1"),
)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # The interop tests turn it on to see STARTED; off by default, as in Celery.
    task_track_started=os.environ.get("CELERY_TASK_TRACK_STARTED") == "1",
    # kombu's default is an hour; the dead-worker test shortens it.
    broker_transport_options={"visibility_timeout": float(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))},
    # x-max-priority of the queues declared on RabbitMQ; unset by default, as in Celery.
    task_queue_max_priority=int(os.environ["CELERY_QUEUE_MAX_PRIORITY"]) if os.environ.get("CELERY_QUEUE_MAX_PRIORITY") else None,
    # result_extended (name, args, kwargs, worker, retries, queue with each result); off by default, as in Celery.
    result_extended=os.environ.get("CELERY_RESULT_EXTENDED") == "1",
)
# Settings of a backend configured by settings rather than its URL (s3_bucket, s3_endpoint_url, ...), as a JSON object.
app.conf.update(json.loads(os.environ.get("CELERY_BACKEND_SETTINGS") or "{}"))
# Message signing (Celery's auth serializer, app.setup_security()) when CELERY_SECURITY_KEY, CELERY_SECURITY_CERTIFICATE
# and CELERY_SECURITY_CERT_STORE are set: task messages are signed and only signed ones are accepted; results stay json.
if os.environ.get("CELERY_SECURITY_KEY"):
    app.conf.update(
        security_key=os.environ["CELERY_SECURITY_KEY"],
        security_certificate=os.environ["CELERY_SECURITY_CERTIFICATE"],
        security_cert_store=os.environ["CELERY_SECURITY_CERT_STORE"],
        task_serializer="auth",
        accept_content=["auth"],
        result_accept_content=["json"],
    )
    app.setup_security()


@app.task(name="tasks.add")
def add(x, y):
    return x + y


@app.task(name="tasks.mul")
def mul(x, y):
    return x * y


@app.task(name="tasks.xsum")
def xsum(numbers):
    return sum(numbers)


@app.task(name="tasks.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="tasks.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="tasks.echo")
def echo(value):
    return value


class FlakyError(Exception):
    """The planned failure of tasks.flaky (Celeriac's Quickstart.FlakyException)."""


@app.task(name="tasks.flaky", bind=True, autoretry_for=(FlakyError,), max_retries=5,
          default_retry_delay=0.2, retry_backoff=False)
def flaky(self, failures):
    """Fails its first `failures` attempts (retried by itself, 0.2 s apart, at most 5 times); returns the attempt that succeeded."""
    attempt = self.request.retries + 1
    if attempt <= failures:
        raise FlakyError(f"attempt {attempt} of {failures} planned failures")
    return attempt


class HandoffError(Exception):
    """Why tasks.handoff's first attempt retries."""


@app.task(name="tasks.handoff", bind=True)
def handoff(self, queue):
    """The first attempt retries onto `queue` in 0.5 s; a later one returns its retries count and worker."""
    if self.request.retries == 0:
        raise self.retry(exc=HandoffError(f"handing off to {queue}"), countdown=0.5, queue=queue)
    return {"retries": self.request.retries, "hostname": self.request.hostname}


@app.task(name="py.scale")
def py_scale(x, factor):
    """x * factor; Python only (no Celeriac task has this name), so a canvas step of it proves Celery ran it."""
    return x * factor


_record_lock = threading.Lock()


@app.task(name="test.record_body")
def record_body(values, record_file):
    """A chord body that records each call: appends 'python <pid> <count> <values as JSON>' to
    <record_file>.<pid> (one file per process, as Celeriac.TestTasks' test.record_body), returns the count."""
    line = "python %d %d %s\n" % (os.getpid(), len(values), json.dumps(values, separators=(",", ":")))
    with _record_lock, open("%s.%d" % (record_file, os.getpid()), "a", encoding="utf-8") as f:
        f.write(line)
    return len(values)


@app.task(name="tasks.trace_context", bind=True)
def trace_context(self):
    """The W3C trace context where opentelemetry-instrumentation-celery's worker extracts it from: attributes of
    task.request (its CeleryGetter reads getattr(request, "traceparent")), which are the message's top-level headers."""
    return {key: getattr(self.request, key, None) for key in ("traceparent", "tracestate")}
