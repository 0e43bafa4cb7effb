"""A pytest plugin for the cgroup-v2 VM: print a failure's report as soon as it happens.

A VM run takes many minutes; its console is the only live view, and pytest keeps reports for the end.
guest.sh loads it with ``-p tests.v2vm.instafail``.
"""

from __future__ import annotations

import pytest


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        print(f"\n==== {report.when} of {report.nodeid} failed:\n{report.longreprtext[-6000:]}\n====", flush=True)
