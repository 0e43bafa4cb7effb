"""A pytest plugin for the cgroup-v2 VM: print a failure's report as soon as it happens, and each test's time.

A VM run takes many minutes; its console is the only live view, and pytest keeps reports for the end
(and a run cut short by the VM's timeout never reaches them). guest.sh loads it with ``-p tests.v2vm.instafail``.
"""

from __future__ import annotations

import time

import pytest

_spent: dict[str, float] = {}
_T0 = time.monotonic()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        print(f"\n==== {report.when} of {report.nodeid} failed:\n{report.longreprtext[-6000:]}\n====", flush=True)
    _spent[report.nodeid] = _spent.get(report.nodeid, 0.0) + report.duration
    if report.when == "teardown":
        took = _spent.pop(report.nodeid)
        print(f"\n[v2vm {time.monotonic() - _T0:7.1f}s] {took:6.1f}s {report.nodeid}", flush=True)
