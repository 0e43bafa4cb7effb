"""README claims of `shoal run` checked on the container itself (issue 12): ``--cpus``, ``-m``, ``--pids-limit``
and ``--cpu-shares`` reach the container's cgroup, ``--rm`` leaves nothing behind, ``--name`` is unique,
``-u``/``-w``/``-e``/``-h``/``--entrypoint``/``-l`` take effect.

The node-local CLI as root through click's runner, in a state dir and cgroup parent of the test's own;
limits are read back from the cgroup files the way an operator would (v1 or v2, whichever the host has).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shoal.cli import containers_common
from shoal.cli.main import main
from tests.fixtures import busybox_image

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: containers use namespaces, mounts and cgroups"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


class Node:
    def __init__(self, root: Path) -> None:
        self.root, self.runner = root, CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        argv = [args[0], "--root", str(self.root), *args[1:]] if args[0] in ("run", "exec") else [*args, "--root", str(self.root)]
        res = self.runner.invoke(main, argv)
        assert res.exit_code == code, (args, res.exit_code, res.stdout, res.stderr, res.exception)
        return res

    def state(self, cid: str) -> dict:
        return json.loads((self.root / "containers" / cid / "state.json").read_text())

    def containers(self) -> list[str]:
        d = self.root / "containers"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setattr(containers_common, "CGROUP_PARENT", f"shoal-test-{uuid.uuid4().hex[:8]}")
    n = Node(tmp_path / "root")
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    n("image", "load", "-i", str(tar))
    yield n
    ids = n("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        n("rm", "-f", *ids)


def cgroup_value(dirs: list[str], v1: str, v2: str) -> str:
    """The first of the v1 or v2 file found in the container's cgroup directories."""
    for d in dirs:
        for name in (v1, v2):
            f = Path(d) / name
            if f.exists():
                return f.read_text().strip()
    raise AssertionError(f"neither {v1} nor {v2} in {dirs}")


def test_limits_reach_the_containers_cgroup(node: Node):
    cid = node("run", "-d", "--cpus", "0.5", "-m", "48m", "--pids-limit", "33", "--cpu-shares", "256",
               "busybox", "sleep", "1000").stdout.strip()
    dirs = node.state(cid)["cgroup_dirs"]
    quota = cgroup_value(dirs, "cpu.cfs_quota_us", "cpu.max").split()
    assert quota[0] == "50000", f"--cpus 0.5 is half of each 100 ms period: {quota}"
    assert cgroup_value(dirs, "memory.limit_in_bytes", "memory.max") == str(48 << 20)
    assert cgroup_value(dirs, "pids.max", "pids.max") == "33"
    shares = cgroup_value(dirs, "cpu.shares", "cpu.weight")
    assert shares in ("256", "10"), "v1 shares, or runc's mapping of 256 shares to a v2 weight"


def test_the_pids_limit_stops_forks_past_it(node: Node):
    script = "i=0; while [ $i -lt 10 ]; do sleep 30 & i=$((i+1)); done; echo all-forked"
    assert node("run", "--rm", "--pids-limit", "50", "busybox", "sh", "-c", script).stdout == "all-forked\n"
    res = node.runner.invoke(main, ["run", "--root", str(node.root), "--rm", "--pids-limit", "5", "busybox", "sh", "-c", script])
    assert res.exit_code != 0 and "all-forked" not in res.stdout, "the 6th process could not be made"


def test_rm_leaves_no_container_behind_even_when_it_fails(node: Node):
    assert node("run", "--rm", "busybox", "true").exit_code == 0
    node("run", "--rm", "busybox", "sh", "-c", "exit 4", code=4)
    assert node("ps", "-aq").stdout == "" and node.containers() == []


def test_without_rm_the_exited_container_stays_listed(node: Node):
    node("run", "--name", "kept", "busybox", "sh", "-c", "exit 2", code=2)
    assert "Exited (2)" in node("ps", "-a").stdout
    assert len(node.containers()) == 1
    node("rm", "kept")
    assert node.containers() == []


def test_a_name_in_use_is_refused_and_nothing_is_created(node: Node):
    node("run", "-d", "--name", "only", "busybox", "sleep", "1000")
    res = node("run", "-d", "--name", "only", "busybox", "sleep", "1000", code=1)
    assert "only" in res.stderr and res.stderr.count("\n") == 1
    assert len(node.containers()) == 1


def test_user_workdir_env_hostname_entrypoint_and_labels_take_effect(node: Node):
    res = node("run", "--rm", "-u", "1000:50", "-w", "/tmp", "-e", "GREETING=hi", "-h", "box1",
               "--entrypoint", "/bin/sh", "busybox", "-c", 'echo "$(id -u):$(id -g) $(pwd) $GREETING $(hostname)"')
    assert res.stdout == "1000:50 /tmp hi box1\n"
    cid = node("run", "-d", "-l", "team=core", "-l", "tier=web", "busybox", "sleep", "1000").stdout.strip()
    labels = node.state(cid)["spec"]["labels"]
    assert (labels["team"], labels["tier"]) == ("core", "web") and labels["shoal.name"], "a generated name too"


def test_a_stopped_container_honours_its_stop_timeout(node: Node):
    cid = node("run", "-d", "--stop-timeout", "1", "busybox", "sh", "-c", "trap '' TERM; sleep 1000").stdout.strip()
    node("stop", cid[:12])
    assert "Exited (137)" in node("ps", "-a").stdout, "TERM ignored: killed after the 1 s timeout"
