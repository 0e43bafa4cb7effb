"""A lab of one manager and three workers, used as a user would: ``shoal lab`` and ``shoal --lab``.

One lab serves the whole module (its ``lab up`` is the cost); each test leaves it with every node
Ready again. The kill -9 test builds a second, smaller lab next to it, which also shows that two
labs run side by side.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.lab_fixtures import SHOAL, LabCli, lab_processes, running_lab, traces


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    with running_lab(tmp_path_factory.mktemp("labs"), "e2e", "--workers", "3") as lab:
        yield lab


def test_lab_up_gives_four_ready_hosts(lab: LabCli):
    print(f"lab up (1 manager + 3 workers): {lab.up_seconds:.2f}s")
    nodes = {n["Hostname"]: n for n in lab.json("node", "ls")}
    assert sorted(nodes) == ["manager1", "worker1", "worker2", "worker3"]
    assert {n["Status"] for n in nodes.values()} == {"Ready"}
    assert (nodes["manager1"]["ManagerStatus"], nodes["manager1"]["Availability"]) == ("Leader", "Drain")
    assert {nodes[w]["Availability"] for w in ("worker1", "worker2", "worker3")} == {"Active"}
    (me,) = json.loads(lab.shoal("node", "inspect", "self", "--format", "json").stdout)  # docker's compact array, of the node of the manager the CLI talks to
    assert (me["Description"]["Hostname"], me["Spec"]["Role"], me["ManagerStatus"]["Leader"]) == ("manager1", "manager", True)
    assert me["ID"] == nodes["manager1"]["ID"] and me["CreatedAt"].endswith("Z")
    workers = lab.shoal("node", "ls", "--filter", "role=worker", "--format", "{{.Hostname}} {{.Status}}").stdout
    assert workers.splitlines() == ["worker1 Ready", "worker2 Ready", "worker3 Ready"]
    # a node-local command under --lab is refused, naming the cluster way, instead of running here
    local = lab.shoal("run", "--rm", "host", "true", check=False)
    assert local.returncode == 2 and f"shoal --lab {lab.name} svc create" in local.stderr
    bad = lab.shoal("node", "ls", "--format", "{{.Nope}}", check=False)
    assert bad.returncode == 2 and 'no field "Nope"' in bad.stderr and bad.stdout == ""

    ls = lab.run("lab", "ls", "--format", "json").stdout
    assert f'"Lab": "{lab.name}"' in ls and '"Etcd": "embedded"' in ls
    host = lab.lab("exec", "worker2", "--", "sh", "-c", "hostname; ip -4 -o addr show eth0").stdout
    addr = next(n["addr"] for n in lab.state()["nodes"] if n["name"] == "worker2")
    assert host.startswith("worker2\n") and f"inet {addr}/" in host
    assert os.uname().nodename != "worker2", "the machine's hostname is untouched"


def test_six_replicas_spread_two_per_worker(lab: LabCli):
    lab.shoal("svc", "create", "--name", "web", "--replicas", "6", "host", "sleep", "1000")
    tasks = [t for t in lab.json("svc", "ps", "web") if t["DesiredState"] == "Running"]
    assert all(t["CurrentState"].startswith("Running") for t in tasks)
    assert Counter(t["Node"] for t in tasks) == {"worker1": 2, "worker2": 2, "worker3": 2}
    # each worker's containers live in that host's cgroup subtree
    worker1 = next(n for n in lab.state()["nodes"] if n["name"] == "worker1")
    procs = [p for d, _, _ in os.walk(worker1["cgroups"][0]) for p in Path(d, "cgroup.procs").read_text().split()]
    assert sum(Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sleep\0") for p in procs if Path(f"/proc/{p}").exists()) == 2
    lab.shoal("svc", "rm", "web")


def test_svc_logs_follow_shows_lines_from_tasks_on_three_nodes(lab: LabCli):
    script = 'i=0; while true; do echo "tick $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.5; done'
    lab.shoal("svc", "create", "--name", "talk", "--replicas", "3", "host", "sh", "-c", script)
    follow = subprocess.Popen([SHOAL, "--lab", lab.name, "svc", "logs", "-f", "--tail", "2", "talk"], env=lab.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(iter(follow.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        nodes = lambda: {ln.split("@", 1)[1].split()[0] for ln in list(out) if "| tick" in ln}  # noqa: E731
        lab.wait_for(lambda: nodes() == {"worker1", "worker2", "worker3"}, timeout=30, what="tick lines from three nodes")
        prefix = re.compile(r"^talk\.[123]\.[0-9a-z]{12}@worker[123]    \| tick \d+$")
        assert all(prefix.match(ln.rstrip("\n")) for ln in list(out)), out[:5]
        seen = len(out)
        lab.wait_for(lambda: len(out) >= seen + 3, timeout=10, what="more lines while following")
    finally:
        follow.terminate()
        follow.wait(10)
    # without -f: the last line of each task, stderr apart from stdout, then the command ends
    once = lab.shoal("svc", "logs", "--tail", "1", "--no-task-ids", "talk")
    assert len(once.stdout.splitlines()) + len(once.stderr.splitlines()) == 3
    assert all(re.match(r"^talk\.[123]@worker[123]    \| err \d+$", ln) for ln in once.stderr.splitlines())
    bad = lab.shoal("svc", "logs", "nope", check=False)
    assert bad.returncode == 1 and "no such service or task: nope" in bad.stderr
    lab.shoal("svc", "rm", "talk")


def kept_logs(lab: LabCli) -> dict[str, set[str]]:
    """The task ids whose logs each worker keeps past their containers (worker/logkeep.py)."""
    dirs = {n["name"]: Path(n["data_dir"]) / "runtime" / "kept-logs" for n in lab.state()["nodes"] if n["role"] == "worker"}
    return {name: set(os.listdir(d)) if d.is_dir() else set() for name, d in dirs.items()}


def test_svc_logs_shows_ended_tasks_until_they_leave_the_history(lab: LabCli):
    """A finished job's tasks and a task replaced by an update have ended and their containers are gone; their
    lines still show in ``svc logs SERVICE`` and ``svc logs TASK``, as docker shows them until the task history
    drops the task, and leave the workers with their tasks (``svc rm``)."""
    lab.shoal("svc", "create", "-d", "--name", "once", "--mode", "replicated-job", "--replicas", "3", "host", "sh", "-c", "echo done")
    ids = lambda svc: {t["ID"] for t in lab.json("svc", "ps", "--no-trunc", svc)}  # noqa: E731
    lab.wait_for(lambda: {t["CurrentState"].split()[0] for t in lab.json("svc", "ps", "once")} == {"Complete"}, timeout=60, what="the job done")
    lab.wait_for(lambda: set().union(*kept_logs(lab).values()) == ids("once"), what="the job's logs kept on the workers")
    job = lab.shoal("svc", "logs", "once").stdout.splitlines()
    assert len(job) == 3 and all(re.match(r"^once\.[123]\.[0-9a-z]{12}@worker[123]\s+\| done$", ln) for ln in job), job
    one = sorted(ids("once"))[0]
    assert [ln.split("|")[1] for ln in lab.shoal("svc", "logs", "--no-task-ids", one).stdout.splitlines()] == [" done"]
    lab.shoal("svc", "create", "--name", "moved", "host", "sh", "-c", "echo up; exec sleep 1000")
    lab.shoal("svc", "update", "--force", "moved")  # the task is replaced: the old one ends, its container goes
    lines = lab.shoal("svc", "logs", "moved").stdout.splitlines()
    assert len(lines) == 2 and {ln.split("@")[0] for ln in lines} == {f"moved.1.{tid[:12]}" for tid in ids("moved")}, lines
    assert all(ln.endswith("| up") for ln in lines), lines
    lab.shoal("svc", "rm", "once", "moved")
    lab.wait_for(lambda: not set().union(*kept_logs(lab).values()), what="the kept logs deleted with their tasks")


def test_lab_kill_of_a_worker_shows_it_down(lab: LabCli):
    lab.lab("kill", "worker1")
    lab.wait_for(lambda: lab.node_status()["worker1"] == "Down", what="worker1 Down")
    row = next(r for r in json.loads(lab.run("lab", "ls", "--format", "json").stdout) if r["Node"] == "worker1" and r["Lab"] == lab.name)
    assert (row["Daemon"], row["Processes"]) == ("stopped", "0")
    assert "started and Ready" in lab.lab("start", "worker1").stdout
    assert lab.node_status()["worker1"] == "Ready"


def test_partition_and_heal_round_trip(lab: LabCli):
    assert "cut off" in lab.lab("partition", "worker3").stdout
    lab.wait_for(lambda: lab.node_status()["worker3"] == "Down", what="worker3 Down")
    assert '"Network": "partitioned"' in lab.run("lab", "ls", "--format", "json").stdout
    lab.lab("heal", "worker3")
    lab.wait_for(lambda: lab.node_status()["worker3"] == "Ready", what="worker3 Ready again")


def test_down_after_kill_9_of_everything_leaves_nothing(lab: LabCli, tmp_path: Path):
    with running_lab(tmp_path, "k9", "--workers", "1", "--managers-run-tasks") as small:
        assert small.state()["subnet"] != lab.state()["subnet"], "a second lab gets its own subnet"
        small.shoal("svc", "create", "--name", "s", "--replicas", "2", "host", "sleep", "1000")
        state = small.state()
        pids = lab_processes(small)
        assert len(pids) >= 5, pids  # manager, its etcd, worker, two runtime launchers, containers
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in pids):
            assert time.monotonic() < deadline, "kill -9 did not take"
            time.sleep(0.05)
        assert traces(small.name, tmp_path, state), "the crash leaves namespaces, links, cgroups and files"
        small.lab("down")
        assert traces(small.name, tmp_path, state) == []
        assert not [p for p in pids if alive(p)]
    assert lab.node_status() == dict.fromkeys(["manager1", "worker1", "worker2", "worker3"], "Ready"), "the other lab is untouched"
