"""The launcher's collected execs (runtime/launcher/lightexec.py) around a real child process: what the
client is answered (output tail, exit code, a setup failure as 126/127, a timeout), and the timeouts.

The process is started with subprocess (not forked from pytest), outside any container: the
namespace joining is covered by tests/integration/test_runtime_exec.py.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time

from shoal.runtime import protocol
from shoal.runtime.launcher import lightexec

KEEP: list[subprocess.Popen] = []


def collected(argv: list[str], deadline: float | None = None, failure: bytes = b"") -> lightexec.Collected:
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    proc = subprocess.Popen(argv, stdout=out_w, stderr=out_w)
    KEEP.append(proc)  # a Popen dropped while running is reaped by the next one: finish() reaps it here
    os.close(out_w)
    os.write(err_w, failure)
    os.close(err_w)
    os.set_blocking(out_r, False)
    return lightexec.Collected(None, proc.pid, os.pidfd_open(proc.pid), out_r, err_r, deadline)


def wait_exit(c: lightexec.Collected) -> None:
    import select

    select.select([c.pidfd], [], [], 10)


def test_the_output_and_the_exit_code_are_the_answer():
    c = collected(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    wait_exit(c)
    out, end = lightexec.finish(c)
    assert base64.b64decode(out["out"]) == b"hello\noops\n"
    assert end == {"ok": True, "exit_code": 3, "timed_out": False}


def test_no_output_is_no_output_message_and_a_signal_is_128_plus_its_number():
    c = collected(["sh", "-c", "kill -9 $$"])
    wait_exit(c)
    assert lightexec.finish(c) == [{"ok": True, "exit_code": 137, "timed_out": False}]


def test_a_setup_failure_is_126_or_127_with_its_reason():
    c = collected(["true"], failure=b"exec: executable file not found in $PATH: nope")
    wait_exit(c)
    assert lightexec.finish(c) == [
        {
            "ok": True,
            "exit_code": 127,
            "timed_out": False,
            "error": "exec: executable file not found in $PATH: nope",
        }
    ]
    c = collected(["true"], failure=b"drop privileges: Operation not permitted")
    wait_exit(c)
    assert lightexec.finish(c)[0]["exit_code"] == 126


def test_only_the_last_bytes_of_a_long_output_are_kept():
    c = collected(["true"])
    wait_exit(c)
    lightexec.finish(c)
    c.output(b"a" * protocol.EXEC_OUTPUT_CAP)
    c.output(b"bcd")
    assert len(c.tail) == protocol.EXEC_OUTPUT_CAP and c.tail.endswith(b"abcd")


def test_a_timeout_kills_the_process_and_says_so():
    c = collected(["sleep", "30"], deadline=time.monotonic() + 0.1)
    other = collected(["sleep", "30"], deadline=time.monotonic() + 60)
    assert lightexec.next_deadline([c, other]) == c.deadline
    lightexec.expire([c, other], time.monotonic())
    assert not c.timed_out, "not due yet"
    time.sleep(0.15)
    lightexec.expire([c, other], time.monotonic())
    assert c.timed_out and not other.timed_out
    assert lightexec.next_deadline([c, other]) == other.deadline, "a killed exec has no deadline left"
    wait_exit(c)
    assert lightexec.finish(c)[-1] == {"ok": True, "exit_code": -1, "timed_out": True}
    other.kill()
    wait_exit(other)
    assert lightexec.finish(other)[-1]["exit_code"] == 137


def test_a_child_left_holding_the_output_does_not_hold_the_answer():
    c = collected(["sh", "-c", "echo before; (sleep 5 &) ; exit 0"])
    wait_exit(c)
    t = time.monotonic()
    out, end = lightexec.finish(c)
    assert time.monotonic() - t < 1 and end["exit_code"] == 0 and base64.b64decode(out["out"]) == b"before\n"


def test_exited_says_whether_the_process_waits_to_be_reaped_without_reaping_it():
    c = collected(["sleep", "30"])
    assert not lightexec.exited(c)
    c.kill()
    wait_exit(c)
    assert lightexec.exited(c) and lightexec.exited(c), "asking twice: still there to be reaped"
    assert lightexec.finish(c)[-1]["exit_code"] == 137
