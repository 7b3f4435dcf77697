"""A pytest plugin (``-p celeriac_report``) that records each test's outcome for scripts/celery-suite.sh.

Every report (setup, call, teardown, and each subtest of pytest-subtests) is appended at once, as one JSON line, to
the file named by CELERIAC_SUITE_REPORT, so outcomes survive a run that is cut short. suite_tool.py summarize reads it.
"""

import json
import os

_path = os.environ.get('CELERIAC_SUITE_REPORT')


def _write(record):
    if not _path:
        return
    with open(_path, 'a', encoding='utf-8') as f:
        f.write(json.dumps(record) + '\n')


def pytest_runtest_logreport(report):
    record = {
        'nodeid': report.nodeid,
        'when': report.when,
        'outcome': report.outcome,          # passed, failed, skipped; rerun (pytest-rerunfailures, --ci)
        'xfail': hasattr(report, 'wasxfail'),
        'subtest': hasattr(report, 'context'),  # pytest-subtests' SubTestReport
    }
    if report.failed or report.outcome == 'rerun':
        record['reason'] = _reason(report)
    _write(record)


def pytest_collectreport(report):
    if report.failed:
        _write({'nodeid': report.nodeid or '<collection>', 'when': 'collect', 'outcome': 'failed',
                'xfail': False, 'subtest': False, 'reason': _reason(report)})


def _reason(report):
    """The last line of the failure (the exception), kept short."""
    text = getattr(report, 'longreprtext', '') or str(report.longrepr or '')
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    crash = getattr(getattr(report, 'longrepr', None), 'reprcrash', None)
    message = getattr(crash, 'message', None) or (lines[-1] if lines else '')
    message = message.splitlines()[0] if message else ''
    if getattr(report, 'context', None) is not None and getattr(report.context, 'msg', None):
        message = '[subtest %r] %s' % (report.context.msg, message)
    return message[:300]
