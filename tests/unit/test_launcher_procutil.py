"""The launcher's small process helpers, on real pipes and real child processes of this test.

Reading a child's report pipe until EOF (or giving up at a deadline), closing every inherited fd but
the ones a forked helper keeps, reaping a child that failed before exec, pidfds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from shoal.runtime.launcher import procutil
from tests.fixtures.fresh import in_fresh_interpreter
from tests.fixtures.runtime import alive


def test_read_until_eof_collects_every_write_until_the_writer_closes():
    r, w = os.pipe()
    try:
        os.write(w, b"first ")
        os.write(w, b"second")
        os.close(w)
        assert procutil.read_until_eof(r, 5) == b"first second"
    finally:
        os.close(r)


def test_read_until_eof_of_a_pipe_closed_at_once_is_empty_not_none():
    r, w = os.pipe()
    os.close(w)
    try:
        assert procutil.read_until_eof(r, 5) == b""
    finally:
        os.close(r)


def test_read_until_eof_gives_up_at_its_deadline_while_the_writer_hangs():
    r, w = os.pipe()
    try:
        os.write(w, b"partial")
        started = time.monotonic()
        assert procutil.read_until_eof(r, 0.2) is None
        assert time.monotonic() - started < 5
    finally:
        os.close(r)
        os.close(w)


def test_read_until_eof_reads_more_than_one_pipe_buffer():
    r, w = os.pipe()
    payload = os.urandom(200_000)
    child = os.fork()
    if child == 0:  # pragma: no cover  (the writer)
        os.close(r)
        os.write(w, payload[:100_000])
        os.write(w, payload[100_000:])
        os._exit(0)
    os.close(w)
    try:
        assert procutil.read_until_eof(r, 10) == payload
    finally:
        os.close(r)
        os.waitpid(child, 0)


@in_fresh_interpreter
def test_close_fds_except_keeps_stdio_and_the_named_fds_only():
    keep_r, keep_w = os.pipe()
    lose_r, lose_w = os.pipe()
    report_r, report_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (runs in the child)
        try:
            procutil.close_fds_except({keep_r, report_w})
            left = sorted(int(n) for n in os.listdir("/proc/self/fd"))
            os.write(report_w, repr(left).encode())
        finally:
            os._exit(0)  # never back into pytest, whatever happened
    os.close(report_w)
    try:
        report = procutil.read_until_eof(report_r, 60)
        assert report, f"the child reported nothing ({report!r})"
        seen = eval(report)  # noqa: S307  (our own child's repr of a list)
    finally:
        os.waitpid(child, 0)
        for fd in (keep_r, keep_w, lose_r, lose_w, report_r):
            os.close(fd)
    assert {0, 1, 2, keep_r, report_w} <= set(seen)
    assert not {keep_w, lose_r, lose_w} & set(seen), "everything else was closed"


def test_reap_failed_kills_and_collects_a_hung_child():
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    procutil.reap_failed(p.pid)
    assert not alive(p.pid), "killed and collected: not even a zombie is left"
    procutil.reap_failed(p.pid)  # already gone: harmless


def test_a_pidfd_of_a_live_process_and_none_for_a_gone_one():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    fd = procutil.pidfd(p.pid)
    assert fd is not None
    os.close(fd)
    p.wait()
    assert procutil.pidfd(2**22 + 7) is None
