"""run_in_netns: a function runs in another network namespace and the caller's thread never leaves its own."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from shoal.runtime.nsthread import run_in_netns

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: creates network namespaces")


@pytest.fixture
def netns_fd():
    name = f"shoal-nsthread-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)
        subprocess.run(["ip", "netns", "del", name], check=True)


def test_the_function_runs_in_the_namespace_and_the_caller_stays_in_its_own(netns_fd: int):
    mine = os.readlink("/proc/thread-self/ns/net")
    theirs = f"net:[{os.fstat(netns_fd).st_ino}]"
    assert run_in_netns(netns_fd, lambda: os.readlink("/proc/thread-self/ns/net")) == theirs != mine
    assert run_in_netns(netns_fd, lambda: Path("/proc/thread-self/net/dev").read_text().count(":")) == 1, "only lo"
    assert os.readlink("/proc/thread-self/ns/net") == mine


def test_what_the_function_raises_reaches_the_caller(netns_fd: int):
    def boom() -> None:
        raise FileNotFoundError(2, "gone")

    with pytest.raises(FileNotFoundError, match="gone"):
        run_in_netns(netns_fd, boom)
    with pytest.raises(OSError):  # not a namespace: setns refuses, the caller hears it
        not_a_namespace = os.open("/proc/self/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            run_in_netns(not_a_namespace, lambda: None)
        finally:
            os.close(not_a_namespace)
