"""Helpers of scripts/celery-suite.sh (run with /usr/bin/python3, Debian's, which has Celery 5.2.6).

  suite_tool.py free-port                          a free TCP port on 127.0.0.1
  suite_tool.py prepare SUITE DEST                 copy SUITE's t/ and pyproject.toml to DEST and patch DEST's conftest.py
  suite_tool.py wait BROKER PID SECONDS [BACKEND]  wait until the worker (process PID) answers on BROKER
  suite_tool.py summarize REPORT [--expect FILE] [--rc N]
                                                   the failed tests, then one line "N passed, N failed" (N is pytest's
                                                   exit code: one more failure unless 0, 1 or 5)
  suite_tool.py node-ids FILE                      the node ids of FILE (one a line; blank lines and # comments skipped)
"""

import json
import os
import shutil
import socket
import stat
import sys
import time

# The two edits made to the copy of conftest.py (the test files stay byte-for-byte as Celery's).
CONFTEST_EDITS = [
    (
        # Celery's in-process worker is replaced by the already running Celeriac worker (celeriac_fixtures.py).
        "from celery.contrib.pytest import celery_app, celery_session_worker\n",
        "from celery.contrib.pytest import celery_app\n"
        "# Celeriac: the suite runs against the Celeriac worker that scripts/celery-suite.sh started.\n"
        "from celeriac_fixtures import celery_session_worker\n",
    ),
    (
        # Celery's tests and tasks meet on Redis at REDIS_HOST:6379; the script's private Redis has another port.
        "    return StrictRedis(host=os.environ.get('REDIS_HOST'))\n",
        "    return StrictRedis(host=os.environ.get('REDIS_HOST'),\n"
        "                       port=int(os.environ.get('REDIS_PORT', 6379)))\n",
    ),
]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        print(s.getsockname()[1])


def prepare(suite, dest):
    shutil.copytree(os.path.join(suite, 't'), os.path.join(dest, 't'))
    shutil.copy(os.path.join(suite, 'pyproject.toml'), os.path.join(dest, 'pyproject.toml'))
    # The suite is read-only; its copy must not be (pytest and the edit below write there).
    for top, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(top, name)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
    conftest = os.path.join(dest, 't', 'integration', 'conftest.py')
    with open(conftest, encoding='utf-8') as f:
        text = f.read()
    for old, new in CONFTEST_EDITS:
        if text.count(old) != 1:
            sys.exit('celery-suite: %s does not have %r exactly once; the suite changed, update suite_tool.py'
                     % (conftest, old.strip()))
        text = text.replace(old, new)
    with open(conftest, 'w', encoding='utf-8') as f:
        f.write(text)


def sign_as_worker(app):
    """With message signing on (scripts/suite-backends/security.sh), the worker runs only signed calls and answers only
    signed remote control, as Celery's: sign both with the worker's own key, which its store trusts."""
    if os.environ.get('CELERIAC_SECURITY_KEY'):
        app.conf.update(security_key=os.environ['CELERIAC_SECURITY_KEY'],
                        security_certificate=os.environ['CELERIAC_SECURITY_CERTIFICATE'],
                        security_cert_store=os.environ['CELERIAC_SECURITY_CERTIFICATE'],
                        task_serializer='auth', accept_content=['auth'], result_accept_content=['json'])
        app.setup_security()


def wait(broker, pid, seconds, backend=None):
    from celery import Celery

    # The worker stores identity's result in its result backend, which may not be the broker (CELERY_SUITE_BACKEND).
    app = Celery('celeriac-suite-wait', broker=broker, backend=backend or broker)
    deadline = time.monotonic() + seconds

    def alive():
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

    sign_as_worker(app)
    replies = []
    while not replies:
        if not alive():
            sys.exit('celery-suite: the worker (pid %d) exited before it answered' % pid)
        if time.monotonic() > deadline:
            sys.exit('celery-suite: the worker did not answer a ping within %d s' % seconds)
        replies = app.control.ping(timeout=1.0)
    result = app.send_task('t.integration.tasks.identity', ('ready',))
    value = result.get(timeout=max(5.0, deadline - time.monotonic()))
    if value != 'ready':
        sys.exit('celery-suite: identity("ready") returned %r' % (value,))
    print('celery-suite: worker %s answers' % ', '.join(name for reply in replies for name in reply))


def summarize(report, expect=None, rc=0):
    """Counts test items (pytest node ids), not reports.

    An item failed when any of its reports failed: setup, call, teardown, or any of its subtests (pytest-subtests
    reports each failed subtest separately, and pytest's own summary counts each of them as one more "failed"); a
    collection error is a failed item too. Otherwise an item passed when its call passed, xpassed included. Skipped
    and xfailed items are neither. With --expect, every node id of that file that did not run is a failed item.
    """
    items = {}
    order = []
    if os.path.exists(report):
        with open(report, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                node = r['nodeid']
                if node not in items:
                    items[node] = {'failed': False, 'reasons': [], 'passed': False, 'xfailed': False,
                                   'xpassed': False, 'skipped': False, 'reruns': []}
                    order.append(node)
                it = items[node]
                if r['outcome'] == 'rerun':
                    # pytest-rerunfailures ran it again (a test Celery marks @flaky, with --ci): passed at a later try.
                    it['reruns'].append(r.get('reason', ''))
                elif r['outcome'] == 'failed':
                    it['failed'] = True
                    it['reasons'].append(('%s: ' % r['when'] if r['when'] != 'call' else '') + r.get('reason', ''))
                elif r['outcome'] == 'skipped' and not r['subtest']:
                    it['xfailed' if r['xfail'] else 'skipped'] = True
                elif r['outcome'] == 'passed' and r['when'] == 'call' and not r['subtest']:
                    it['xpassed' if r['xfail'] else 'passed'] = True

    missing = []
    if expect:
        for node in read_node_ids(expect):
            if node not in items:
                missing.append(node)

    passed = [n for n in order if not items[n]['failed'] and (items[n]['passed'] or items[n]['xpassed'])]
    failed = [n for n in order if items[n]['failed']]
    xfailed = [n for n in order if not items[n]['failed'] and items[n]['xfailed']]
    xpassed = [n for n in order if not items[n]['failed'] and items[n]['xpassed']]
    skipped = [n for n in order if not items[n]['failed'] and items[n]['skipped'] and not items[n]['xfailed']]

    # pytest stopped early (interrupted, the time budget, an internal or usage error): that is a failure too.
    broken = ['pytest exited with code %d (%s)' % (rc, PYTEST_EXIT_CODES.get(rc, 'killed or timed out'))] \
        if rc not in (0, 1, 5) else []
    if failed or missing or broken:
        print('celery-suite: failed tests')
        for b in broken:
            print('  FAILED %s' % b)
        for n in failed:
            print('  FAILED %s - %s' % (n, ' | '.join(items[n]['reasons'])[:400]))
        for n in missing:
            print('  FAILED %s - did not run' % n)
    rerun = [n for n in order if items[n]['reruns']]
    if rerun:
        print('celery-suite: ran again (Celery marks them @flaky; the last try counts)')
        for n in rerun:
            print('  RERUN x%d %s - %s' % (len(items[n]['reruns']), n, ' | '.join(items[n]['reruns'])[:300]))
    if xpassed:
        print('celery-suite: xpassed (marked xfail in Celery\'s suite, passed here)')
        for n in xpassed:
            print('  XPASS %s' % n)
    nfailed = len(failed) + len(missing) + len(broken)
    print('celery-suite: %d passed (%d xpassed, %d after a rerun), %d failed, %d skipped, %d xfailed (test items)'
          % (len(passed), len(xpassed), len([n for n in rerun if n in passed]), nfailed, len(skipped), len(xfailed)))
    print('%d passed, %d failed' % (len(passed), nfailed))
    return nfailed


PYTEST_EXIT_CODES = {2: 'interrupted', 3: 'internal error', 4: 'usage error'}


def read_node_ids(path):
    with open(path, encoding='utf-8') as f:
        return [line.strip() for line in f if line.strip() and not line.lstrip().startswith('#')]


def main(argv):
    if len(argv) >= 1 and argv[0] == 'free-port':
        free_port()
    elif len(argv) == 3 and argv[0] == 'prepare':
        prepare(argv[1], argv[2])
    elif len(argv) in (4, 5) and argv[0] == 'wait':
        wait(argv[1], int(argv[2]), float(argv[3]), argv[4] if len(argv) == 5 else None)
    elif len(argv) >= 2 and argv[0] == 'summarize':
        options = dict(zip(argv[2::2], argv[3::2]))
        if len(argv) % 2 != 0 or set(options) - {'--expect', '--rc'}:
            sys.exit(__doc__)
        nfailed = summarize(argv[1], options.get('--expect'), int(options.get('--rc', '0')))
        sys.exit(1 if nfailed else 0)
    elif len(argv) == 2 and argv[0] == 'node-ids':
        print('\n'.join(read_node_ids(argv[1])))
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
