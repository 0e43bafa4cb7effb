"""The step-timing lines of SHOAL_RUNTIME_TRACE and their summary."""

from __future__ import annotations

import os

from shoal.runtime.launcher import trace


def test_summary_gives_per_step_medians_and_skips_other_lines() -> None:
    lines = [
        '{"event": "launcher ready"}',
        "shoal-trace start @t0=10.5 total=3.0 fork=1.0 exec_wait=2.0",
        "shoal-trace start @t0=11.5 total=5.0 fork=3.0 exec_wait=2.0",
        "shoal-trace start @t0=12.5 total=4.0 fork=2.0 exec_wait=bad",
        "shoal-trace delete @t0=13.0 total=1.0 rmdirs=1.0",
    ]
    assert trace.summarize(lines) == [
        "start (n=3): total=4.00 fork=2.00 exec_wait=2.00",
        "delete (n=1): total=1.00 rmdirs=1.00",
    ]


def test_marks_write_one_line_when_enabled(monkeypatch) -> None:
    r, w = os.pipe()
    monkeypatch.setattr(trace, "ENABLED", True)
    trace.begin("create", w)
    trace.mark("cgroup")
    trace.mark("save")
    trace.end()
    trace.mark("after-end")  # ignored: no operation is being timed
    os.close(w)
    line = os.read(r, 4096).decode()
    os.close(r)
    assert line.startswith("shoal-trace create @t0=") and line.endswith("\n")
    assert [f.partition("=")[0] for f in line.split()[3:]] == ["total", "cgroup", "save"]


def test_disabled_tracing_writes_nothing(monkeypatch) -> None:
    r, w = os.pipe()
    monkeypatch.setattr(trace, "ENABLED", False)
    trace.begin("create", w)
    trace.mark("cgroup")
    trace.end()
    os.close(w)
    assert os.read(r, 4096) == b""
    os.close(r)
