"""The walking skeleton as a user runs it: manager + worker processes, the CLI, real containers.

Checks from the host that every task runs in its own pid namespace and cgroup, and that removing
the service leaves no cgroup, mount, process or container state behind. The tests share one cluster
(``shared_cli_cluster``: each gets it back without services, containers or node-local images); the
metrics test, which adds a node, has its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from shoal import etcdtls
from tests.e2e.clicluster import SHOAL, CliCluster, containers, free_port, running_pids
from tests.timing import scaled


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if str(path) in line]


def running_containers(c: CliCluster) -> int:
    """Running containers on both nodes, from their state files: waiting on these first spares the
    cgroup-v2 VM a `svc ps` process per poll (seconds each under emulation)."""
    return sum(st["status"] == "running" for st in containers(c).values())


def memory_cgroup(pid: int) -> str:
    """The process' memory cgroup: the v1 memory hierarchy's line, or the unified (v2) one on a v2-only host."""
    entries = [line.split(":", 2) for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()]
    v1 = [path for _, ctrls, path in entries if "memory" in ctrls.split(",")]
    return (v1 or [path for _, ctrls, path in entries if ctrls == ""])[0]


def test_svc_create_runs_replicas_in_isolated_containers(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    nodes = c.json("node", "ls")
    assert sorted(n["Hostname"] for n in nodes) == ["e2e-manager", "e2e-worker"]
    assert {n["ManagerStatus"] for n in nodes} == {"Leader", ""}

    t0 = time.monotonic()
    # python as PID 1 ignores SIGTERM: a short grace, so the scale-down and removal need not wait 10 s each
    res = c.shoal("svc", "create", "--name", "web", "--replicas", "3", "--stop-grace-period", "1s", "host", "python3", "-m", "http.server", "8000")
    converge_s = time.monotonic() - t0
    assert "overall progress: 3 out of 3 tasks" in res.stdout
    assert "verify: Service converged" in res.stdout
    print(f"svc create --replicas 3 converged in {converge_s:.2f}s")

    ls = c.json("svc", "ls")
    assert [(s["Name"], s["Mode"], s["Replicas"], s["Image"]) for s in ls] == [("web", "replicated", "3/3", "host")]
    ps = c.json("svc", "ps", "web")
    assert sorted(t["Name"] for t in ps) == ["web.1", "web.2", "web.3"]
    assert all(t["CurrentState"].startswith("Running") for t in ps)
    assert {t["Node"] for t in ps} == {"e2e-manager", "e2e-worker"}, "replicas spread over both nodes"
    inspect = json.loads(c.shoal("svc", "inspect", "web").stdout)
    assert inspect[0]["Spec"]["TaskTemplate"]["ContainerSpec"]["Args"] == ["python3", "-m", "http.server", "8000"]

    pids = running_pids(c, "web")
    assert len(pids) == 3
    host_pidns = os.readlink("/proc/self/ns/pid")
    pidns = {os.readlink(f"/proc/{pid}/ns/pid") for pid in pids.values()}
    assert len(pidns) == 3 and host_pidns not in pidns, "each task has its own pid namespace"
    netns = {os.readlink(f"/proc/{pid}/ns/net") for pid in pids.values()}
    assert len(netns) == 3, "each task has its own network namespace (three servers on port 8000)"
    cgroups = set()
    for tid, pid in pids.items():
        mem = memory_cgroup(pid)
        assert mem.endswith(tid), f"task {tid} runs in its own memory cgroup, got {mem}"
        cgroups.add(mem)
        with open(f"/proc/{pid}/status") as f:
            assert "NoNewPrivs:\t1" in f.read()
    assert len(cgroups) == 3

    res = c.shoal("svc", "scale", "web=5")
    assert "overall progress: 5 out of 5 tasks" in res.stdout
    assert len(running_pids(c, "web")) == 5

    cgroup_dirs = [d for st in containers(c).values() for d in st["cgroup_dirs"]]
    assert cgroup_dirs and all(os.path.isdir(d) for d in cgroup_dirs)
    all_pids = list(running_pids(c, "web").values())

    res = c.shoal("svc", "rm", "web")
    assert res.stdout.strip() == "web"

    def cleaned():
        return not containers(c) and not any(os.path.exists(f"/proc/{p}") for p in all_pids)

    c.wait_for(cleaned, timeout=30, what="containers of the removed service cleaned up")
    assert not [d for d in cgroup_dirs if os.path.exists(d)], "no cgroup left behind"
    assert not mounts_under(c.tmp), "no mount left behind"
    assert c.json("svc", "ls") == []
    assert list((c.tmp / "w" / "runtime" / "containers").iterdir()) == []


def test_bad_input_is_refused_and_nothing_written(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    cases = [
        (["svc", "create", "--replicas", "2", "host", "true"], "name"),
        (["svc", "create", "--name", "x", "--replicas", "-1", "host", "true"], "replicas"),
        (["svc", "create", "--name", "x", "Bad:Image"], "invalid reference format"),
        (["svc", "create", "--name", "x", "nosuchimage:1"], "no such image: nosuchimage:1"),
        (["svc", "create", "--name", "x", "--limit-memory", "12Q", "host", "true"], "12Q"),
        (["svc", "create", "--name", "x", "--no-such-flag", "host", "true"], "no-such-flag"),
    ]
    for args, needle in cases:
        res = c.shoal(*args, check=False)
        assert res.returncode != 0, args
        assert needle in (res.stderr + res.stdout), (args, res.stderr)
        assert "Traceback" not in res.stderr
    c.shoal("svc", "create", "-d", "--name", "dup", "--replicas", "0", "host", "true")
    res = c.shoal("svc", "create", "-d", "--name", "dup", "host", "true", check=False)
    assert res.returncode != 0 and "already exists" in res.stderr
    assert [s["Name"] for s in c.json("svc", "ls")] == ["dup"]
    c.shoal("svc", "rm", "dup")


def test_an_image_missing_on_the_node_rejects_the_task_with_a_clear_error(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    c.shoal("svc", "create", "-d", "--no-resolve-image", "--name", "missing", "nosuchimage:1")

    def rejected() -> list[dict]:
        return [t for t in c.tasks("svc", "ps", "missing") if "Rejected" in str(t["CurrentState"])]

    task = c.wait_for(rejected, 30, "a rejected task")[0]
    assert "image nosuchimage:1 not found on node" in task["Error"], task
    c.shoal("svc", "rm", "missing")


def test_a_busybox_service_runs_on_nodes_that_loaded_the_image(shared_cli_cluster: CliCluster):
    from tests.fixtures import busybox_image

    c = shared_cli_cluster
    tar = c.tmp / "busybox.tar"
    busybox_image.build(str(tar))
    for node_dir in ("m", "w"):  # node-local image stores: the cluster's store does not know the image
        c.shoal("image", "load", "--root", str(c.tmp / node_dir / "runtime"), "-i", str(tar))
    res = c.shoal("svc", "create", "-d", "--name", "bb", "busybox:latest", "sleep", "600", check=False)
    assert res.returncode != 0 and "no such image: busybox:latest" in res.stderr
    # sleep as PID 1 ignores SIGTERM: a short grace, so the removal at the end need not wait 10 s for the SIGKILL
    c.shoal("svc", "create", "-d", "--no-resolve-image", "--name", "bb", "--replicas", "2", "--stop-grace-period", "1s", "busybox:latest", "sleep", "600")

    def running() -> list[dict]:
        tasks = [t for t in c.json("svc", "ps", "bb") if str(t["CurrentState"]).startswith("Running")]
        return tasks if len(tasks) == 2 else []

    c.wait_for(lambda: running_containers(c) == 2, 30, "2 running busybox containers")
    c.wait_for(running, 30, "2 running busybox tasks")
    c.shoal("svc", "rm", "bb")


def test_a_cluster_image_is_pulled_by_the_nodes_that_run_it(shared_cli_cluster: CliCluster):
    from tests.fixtures import busybox_image

    c = shared_cli_cluster
    tar = c.tmp / "busybox.tar"
    busybox_image.build(str(tar), tag="cbox:1")
    assert c.shoal("image", "load", "--cluster", "-i", str(tar)).stdout == "Loaded image: cbox:1\n"
    listed = c.shoal("image", "ls", "--cluster").stdout.splitlines()
    assert listed[1].split()[:2] == ["cbox", "1"]
    c.shoal("svc", "create", "-d", "--name", "cb", "--replicas", "2", "--stop-grace-period", "1s", "cbox:1", "sleep", "600")

    def running() -> list[dict]:
        tasks = [t for t in c.json("svc", "ps", "cb") if str(t["CurrentState"]).startswith("Running")]
        return tasks if len(tasks) == 2 else []

    c.wait_for(lambda: running_containers(c) == 2, 40, "2 running containers of the cluster image")
    tasks = c.wait_for(running, 40, "2 running tasks of the cluster image")
    assert {t["Node"] for t in tasks} == {"e2e-manager", "e2e-worker"}  # spread: both nodes pulled it
    for node_dir in ("m", "w"):
        assert len(list((c.tmp / node_dir / "runtime" / "images" / "images").glob("*.json"))) == 1
    bad = c.tmp / "bad.tar"
    bad.write_bytes(b"junk" * 10)
    res = c.shoal("image", "load", "--cluster", "-i", str(bad), check=False)
    assert res.returncode != 0 and "invalid image archive" in res.stderr and "Traceback" not in res.stderr
    c.shoal("svc", "rm", "cb")


def test_worker_with_a_wrong_token_is_refused(shared_cli_cluster: CliCluster):
    c = shared_cli_cluster
    res = subprocess.run(
        [SHOAL, "worker", "--join", c.addr, "--token", "SHOAL-1-abc-def", "--data-dir", str(c.tmp / "bad")],
        capture_output=True, text=True, timeout=scaled(30),
    )
    assert res.returncode != 0
    assert "invalid join token" in res.stderr
    assert len(c.json("node", "ls")) == 2


def test_manager_without_etcd_exits_with_a_clear_error(tmp_path: Path):
    client = etcdtls.ensure_pair(tmp_path / "etcd-tls", "managers", [], server=False)
    res = subprocess.run(
        [SHOAL, "manager", "--data-dir", str(tmp_path), "--etcd", f"https://127.0.0.1:{free_port()}", "--socket", str(tmp_path / "s.sock"),
         "--etcd-ca", str(client.ca), "--etcd-cert", str(client.cert), "--etcd-key", str(client.key),
         "--listen-addr", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=scaled(60),
    )
    assert res.returncode != 0
    assert "cannot reach etcd" in res.stderr


def test_metrics_endpoint(tmp_path: Path, cli_cluster: CliCluster):
    port = free_port()
    c = cli_cluster
    c.start("worker", "--join", c.addr, "--token", c.token, "--data-dir", str(tmp_path / "w2"), "--hostname", "metrics-worker",
            "--metrics-addr", f"127.0.0.1:{port}", name="worker2")

    def scrape():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
        except OSError:
            return ""

    body = c.wait_for(scrape, what="metrics endpoint")
    assert "shoal_build_info" in body
