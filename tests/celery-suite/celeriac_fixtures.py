"""The fixture that replaces Celery's in-process test worker in scripts/celery-suite.sh's copy of the suite.

Celery's conftest.py imports ``celery_session_worker`` from ``celery.contrib.pytest``: a session fixture that starts
a Celery worker inside pytest's process. The copy imports this one instead. It starts nothing: the Celeriac worker
(tests/Celeriac.SuiteWorker) is already running on the suite's broker; the fixture does what Celery's does before it
hands the worker over (import the task modules, register the class-based tasks in the client app) and then waits,
boundedly, until that worker answers a control ping and runs ``t.integration.tasks.identity``.
"""

import os
import time
import types

import pytest

from suite_tool import sign_as_worker

# Bounds of the wait for the worker (the script has already waited for it once; this is a second, shorter check).
PING_DEADLINE_SECONDS = 60
ROUND_TRIP_TIMEOUT_SECONDS = 30


@pytest.fixture(scope='session')
def celery_session_worker(celery_session_app, celery_includes, celery_class_tasks):
    """Session fixture: the already running Celeriac worker, once it answers."""
    for module in celery_includes:
        celery_session_app.loader.import_task_module(module)
    for class_task in celery_class_tasks:
        celery_session_app.tasks.register(class_task)

    # Signed as the worker until test_security.py sets up its own key.
    sign_as_worker(celery_session_app)

    deadline = time.monotonic() + PING_DEADLINE_SECONDS
    replies = []
    while not replies:
        replies = celery_session_app.control.ping(timeout=1.0)
        if not replies and time.monotonic() > deadline:
            pytest.fail('the Celeriac worker did not answer a ping within %d s' % PING_DEADLINE_SECONDS)

    # With signing on the signed ping is the check (the script's wait has already had a signed identity call run).
    if not os.environ.get('CELERIAC_SECURITY_KEY'):
        result = celery_session_app.send_task('t.integration.tasks.identity', ('celeriac-ready',))
        assert result.get(timeout=ROUND_TRIP_TIMEOUT_SECONDS) == 'celeriac-ready'

    hostnames = [name for reply in replies for name in reply]
    yield types.SimpleNamespace(hostname=hostnames[0] if hostnames else None, hostnames=hostnames)
