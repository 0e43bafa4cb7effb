"""A lab host's processes live in one cgroup subtree, so ``lab kill`` and ``lab down`` find and end all of them.

Real cgroups as root, under a lab name of this test's own: processes (and the children they fork) are
put in a node's cgroup the way the lab starts them (``join_self`` right before exec), then found,
killed as a whole and the directories removed, leaving nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from shoal.lab import cgroups
from shoal.lab.state import LabError
from tests.fixtures.runtime import alive
from tests.timing import wait_until

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: makes cgroups"),
    pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup"), reason="no cgroup filesystem mounted"),
]


@pytest.fixture
def lab() -> Iterator[list[str]]:
    dirs = cgroups.lab_dirs(f"test-{uuid.uuid4().hex[:8]}")
    try:
        yield dirs
    finally:
        cgroups.kill_all(dirs)
        cgroups.remove(dirs)
        cgroups.remove_parent_if_empty(dirs)


def start_in(dirs: list[str], script: str) -> subprocess.Popen:
    """``sh -c script`` started inside the node cgroups ``dirs`` (joined in the child, before exec)."""
    return subprocess.Popen(["/bin/sh", "-c", script], preexec_fn=lambda: cgroups.join_self(dirs),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_the_lab_cgroup_is_below_our_own_in_every_hierarchy(lab):
    assert lab and all(d.endswith("/shoal-lab/" + os.path.basename(d)) for d in lab)
    assert all(d.startswith("/sys/fs/cgroup") for d in lab)
    assert cgroups.leftovers(lab) == [], "nothing is made until a node asks"


def test_a_nodes_processes_and_their_children_are_found_then_killed_as_a_whole(lab):
    node = cgroups.node_dirs(lab, "node-1")
    cgroups.create(node)
    other = cgroups.node_dirs(lab, "node-2")
    cgroups.create(other)
    proc = start_in(node, "sleep 1000 & sleep 1000 & wait")
    bystander = start_in(other, "sleep 1000")
    try:
        found = wait_until(lambda: (p := cgroups.pids(node)) and len(p) >= 3 and p, 10, "the shell and its 2 sleeps")
        assert proc.pid in found and bystander.pid not in found
        assert bystander.pid in cgroups.pids(other)
        cgroups.kill_all(node)
        assert cgroups.pids(node) == set()
        assert proc.wait(5) == -9
        assert not any(alive(p) for p in found), "the forked children died too"
        assert alive(bystander.pid), "another node's processes are left alone"
    finally:
        bystander.kill()
        bystander.wait()


def test_the_whole_lab_subtree_is_one_kill(lab):
    nodes = [cgroups.node_dirs(lab, f"n{i}") for i in range(3)]
    procs = []
    for n in nodes:
        cgroups.create(n)
        procs.append(start_in(n, "exec sleep 1000"))
    wait_until(lambda: len(cgroups.pids(lab)) == 3, 10, "3 processes in the lab")
    cgroups.kill_all(lab)
    assert [p.wait(5) for p in procs] == [-9, -9, -9]


def test_remove_takes_the_directories_deepest_first_and_the_shared_parent_when_empty(lab):
    node = cgroups.node_dirs(lab, "node-1")
    cgroups.create(node)
    for d in node:
        os.makedirs(os.path.join(d, "shoal", "container-1"), exist_ok=True)  # as the node's runtime nests below
    assert cgroups.leftovers(lab) == lab
    cgroups.remove(lab)
    assert cgroups.leftovers(lab) == []
    cgroups.remove_parent_if_empty(lab)
    # the shared shoal-lab directory goes only when no other lab uses it
    assert all(not os.path.isdir(os.path.dirname(d)) or os.listdir(os.path.dirname(d)) for d in lab)


def test_removing_a_cgroup_that_still_holds_a_process_is_a_clear_error(lab):
    node = cgroups.node_dirs(lab, "busy")
    cgroups.create(node)
    proc = start_in(node, "sleep 1000")
    try:
        wait_until(lambda: proc.pid in cgroups.pids(node), 10, "the process in its cgroup")
        with pytest.raises(LabError, match="cannot remove cgroup"):
            cgroups.remove(node, timeout=0.2)
    finally:
        cgroups.kill_all(node)
        proc.wait()
    cgroups.remove(node)
    assert cgroups.leftovers(node) == []


def test_kill_and_remove_of_a_lab_that_was_never_made_do_nothing():
    dirs = cgroups.lab_dirs(f"never-{uuid.uuid4().hex[:8]}")
    cgroups.kill_all(dirs)
    cgroups.remove(dirs)
    assert cgroups.leftovers(dirs) == [] and cgroups.pids(dirs) == set()
