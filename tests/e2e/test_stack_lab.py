"""The realistic stacks of tests/fixtures/stacks deployed on one lab, through the CLI as a user would.

The lab: a manager that runs tasks and two workers (worker1 labelled zone=a, worker2 zone=b and
storage=ssd), with the stackdemo images (busybox httpd; tests/e2e/stacklab.py). Each stack must
converge: every service runs its replicas, healthy where it has a health check, on the nodes its
constraints allow, its networks, secrets and configs exist with the stack's label, and tasks reach
the services they rely on by name, from inside their containers, across nodes. Then a re-deploy
changes an image and a replica count (only that service's tasks are replaced, by the new image),
``--prune`` removes a service gone from the file, and ``stack rm`` leaves nothing of the stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import netlab, stacklab
from tests.e2e.lab_fixtures import LabCli, running_lab
from tests.e2e.stacklab import (
    STACKS,
    counts,
    deploy,
    fetch,
    in_task,
    inspect,
    leftovers,
    running,
    wait_converged,
)

pytestmark = [
    pytest.mark.skipif(subprocess.run(["which", "nft"], capture_output=True).returncode != 0, reason="needs nft (nftables)"),
    pytest.mark.timeout(400),  # the module's lab (up, two images loaded) is paid by its first test
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    tmp = tmp_path_factory.mktemp("stacklab")
    with running_lab(tmp / "labs", "stk", "--workers", "2", "--managers-run-tasks") as lab:
        stacklab.load_images(lab, tmp)
        lab.shoal("node", "update", "--label-add", "zone=a", "worker1")
        lab.shoal("node", "update", "--label-add", "zone=b", "--label-add", "storage=ssd", "worker2")
        yield lab


def addr(lab: LabCli, node: str) -> str:
    return next(n["addr"] for n in lab.state()["nodes"] if n["name"] == node)


def served_by(lab: LabCli, node: str, port: int, names: set[str]) -> None:
    """Wait until ``node``'s published ``port`` (the routing mesh) is answered by exactly the tasks ``names``
    (a node's rules follow the cluster's changes a moment later)."""
    lab.wait_for(lambda: set(netlab.served_by(netlab.get_here(addr(lab, node), port, 4 * len(names)))) == names, 30,
                 f"port {port} of {node} served by exactly {sorted(names)}")


def ids(tasks: list[dict], service: str) -> set[str]:
    return {t["ID"] for t in tasks if stacklab.service_of(t) == service}


def namespace_of(lab: LabCli, kind: str, name: str) -> str | None:
    doc = inspect(lab, kind, name)
    labels = doc.get("Labels") or doc.get("Spec", {}).get("Labels") or {}
    return labels.get("com.docker.stack.namespace")


def without_service(src: Path, dst: Path, service: str, following: str) -> Path:
    """A copy of stack file ``src`` without the ``service`` block (the lines up to ``following``'s)."""
    text = src.read_text()
    dst.write_text(text[: text.index(f"\n  {service}:\n")] + text[text.index(f"\n  {following}:\n"):])
    return dst


def test_a_web_database_and_cache_stack_converges_then_rolls_a_new_image(lab: LabCli):
    res = deploy(lab, "shop", STACKS / "webapp.yml")
    assert res.stdout.index("Creating network shop_back") < res.stdout.index("Creating service")
    assert "Creating secret shop_db_password" in res.stdout and "Creating config shop_site" in res.stdout
    tasks = wait_converged(lab, "shop", {"shop_web": 3, "shop_db": 1, "shop_cache": 1}, healthy={"shop_web", "shop_db"})
    (db,) = (t for t in tasks if stacklab.service_of(t) == "shop_db")
    (cache,) = (t for t in tasks if stacklab.service_of(t) == "shop_cache")
    assert db["Node"] == "worker2" and cache["Node"] != "worker2", "node.labels.storage == ssd / != ssd"
    for kind, name in (("network", "shop_front"), ("network", "shop_back"), ("secret", "shop_db_password"), ("config", "shop_site")):
        assert namespace_of(lab, kind, name) == "shop", (kind, name)

    # every web task is healthy: its check reached db and cache by name; here from a task on another node than db
    web = next(t for t in tasks if stacklab.service_of(t) == "shop_web" and t["Node"] != db["Node"])
    assert f"task={db['Name']} node=worker2" in fetch(lab, web, "http://db/cgi-bin/whoami")
    assert f"task={cache['Name']} node={cache['Node']}" in fetch(lab, web, "http://cache/cgi-bin/whoami")
    assert fetch(lab, web, "http://127.0.0.1/site.conf") == "shop = corner shop"  # the config, interpolated
    assert in_task(lab, db, "cat", "/run/secrets/db_password").stdout == (STACKS / "db_password.txt").read_text()
    assert in_task(lab, db, "cat", "/var/lib/db/starts").stdout == "up\n"  # the named volume
    web_ids = ids(tasks, "shop_web")
    served_by(lab, "manager1", 8081, {t["Name"] for t in tasks if stacklab.service_of(t) == "shop_web"})

    # a new image and one more replica: only web's tasks are replaced, by tasks of the new image
    plan = deploy(lab, "shop", STACKS / "webapp.yml", env={"WEB_TAG": "2", "WEB_REPLICAS": "4"}, extra=("--dry-run",)).stdout
    assert '"stackdemo:1" => "stackdemo:2"' in plan and '"3" => "4"' in plan, plan
    assert "service shop_db: unchanged" in plan and "service shop_cache: unchanged" in plan, plan
    res = deploy(lab, "shop", STACKS / "webapp.yml", env={"WEB_TAG": "2", "WEB_REPLICAS": "4"}, extra=("--detach=false",))
    assert "Updating service shop_web" in res.stdout and "shop_db" not in res.stdout and "shop_cache" not in res.stdout
    after = wait_converged(lab, "shop", {"shop_web": 4, "shop_db": 1, "shop_cache": 1}, healthy={"shop_web"})
    new_web = [t for t in after if stacklab.service_of(t) == "shop_web"]
    assert {t["Image"] for t in new_web} == {"stackdemo:2"} and not web_ids & ids(after, "shop_web")
    assert ids(after, "shop_db") == {db["ID"]} and ids(after, "shop_cache") == {cache["ID"]}, "untouched services keep their tasks"
    assert all(fetch(lab, t, "http://127.0.0.1/version") == "2" for t in new_web)
    served_by(lab, "manager1", 8081, {t["Name"] for t in new_web})  # the mesh reaches only the new tasks

    res = lab.shoal("stack", "rm", "shop")
    for line in ("Removing service shop_web", "Removing secret shop_db_password", "Removing config shop_site", "Removing network shop_back"):
        assert line in res.stdout, res.stdout
    assert leftovers(lab, "shop") == {"svc": [], "network": [], "secret": [], "config": []}


def test_a_voting_app_stack_keeps_its_placement_and_policies(lab: LabCli, tmp_path: Path):
    deploy(lab, "vote", STACKS / "voting.yml")
    tasks = wait_converged(lab, "vote", {"vote_redis": 1, "vote_db": 1, "vote_vote": 2, "vote_result": 1, "vote_worker": 1})
    on = {stacklab.service_of(t): t["Node"] for t in tasks}
    assert on["vote_db"] == "manager1" and on["vote_worker"] == "manager1", "node.role == manager"
    assert sorted(t["Node"] for t in tasks if stacklab.service_of(t) == "vote_vote") == ["worker1", "worker2"], \
        "node.role == worker, max_replicas_per_node 1"
    worker = next(t for t in tasks if stacklab.service_of(t) == "vote_worker")
    redis = next(t for t in tasks if stacklab.service_of(t) == "vote_redis")
    assert f"task={redis['Name']}" in fetch(lab, worker, "http://redis/cgi-bin/whoami")  # frontend
    assert "task=vote_db.1" in fetch(lab, worker, "http://db/cgi-bin/whoami")  # backend
    vote = next(t for t in tasks if stacklab.service_of(t) == "vote_vote")
    assert in_task(lab, vote, "wget", "-q", "-O", "-", "http://db/", check=False).returncode != 0, "vote is not on backend"
    for port, service in ((5000, "vote_vote"), (5001, "vote_result")):
        served_by(lab, "worker1", port, {t["Name"] for t in tasks if stacklab.service_of(t) == service})

    spec = inspect(lab, "svc", "vote_vote")["Spec"]
    assert spec["UpdateConfig"]["Order"] == "start-first" and spec["UpdateConfig"]["FailureAction"] == "rollback"
    assert spec["UpdateConfig"]["Monitor"] == 30 * 10**9 and spec["UpdateConfig"]["MaxFailureRatio"] == 0.25
    assert spec["RollbackConfig"]["Parallelism"] == 0 and spec["RollbackConfig"]["Order"] == "stop-first"
    wspec = inspect(lab, "svc", "vote_worker")["Spec"]
    assert wspec["Labels"]["APP"] == "VOTING"
    rp = wspec["TaskTemplate"]["RestartPolicy"]
    assert (rp["Condition"], rp["Delay"], rp["MaxAttempts"], rp["Window"]) == ("on-failure", 10**9, 3, 120 * 10**9), rp

    # restart_policy on-failure: a worker killed is replaced, on the manager again
    state = json.loads(next(lab.dir.glob(f"*/runtime/containers/{worker['ID']}/state.json")).read_text())
    os.kill(state["pid"], signal.SIGKILL)
    lab.wait_for(lambda: (w := [t for t in running(lab, "vote") if stacklab.service_of(t) == "vote_worker"])
                 and w[0]["ID"] != worker["ID"] and w[0]["Node"] == "manager1", 60, "the worker replaced on manager1")
    failed = [t for t in lab.tasks("svc", "ps", "vote_worker") if t["ID"] == worker["ID"]]
    assert failed and failed[0]["CurrentState"].startswith("Failed"), failed

    # --prune: a service gone from the file is removed, the others keep their tasks
    before = {t["ID"] for t in running(lab, "vote") if stacklab.service_of(t) != "vote_result"}
    trimmed = without_service(STACKS / "voting.yml", tmp_path / "voting.yml", "result", "worker")
    res = deploy(lab, "vote", trimmed)
    assert "Service vote_result is not in the stack file; kept" in res.stderr
    res = deploy(lab, "vote", trimmed, extra=("--prune",))
    assert "Removing service vote_result" in res.stdout and "Updating" not in res.stdout
    assert {s["Name"] for s in lab.json("stack", "services", "vote")} == {"vote_redis", "vote_db", "vote_vote", "vote_worker"}
    assert {t["ID"] for t in running(lab, "vote")} == before
    lab.shoal("stack", "rm", "vote")
    assert leftovers(lab, "vote") == {"svc": [], "network": [], "secret": [], "config": []}


def test_a_stack_using_every_supported_key_converges_and_each_key_reaches_its_task(lab: LabCli, tmp_path: Path):
    (tmp_path / "legacy").write_text("old style\n")
    lab.shoal("secret", "create", "legacy_secret", str(tmp_path / "legacy"))
    lab.shoal("network", "create", "host-net")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from the node\n")
    env = {"API_KEY": "k-123", "FROM_SHELL": "yes", "BIND_DIR": str(shared)}
    res = deploy(lab, "all", STACKS / "everything.yml", env=env)
    assert "Creating config motd-v1" in res.stdout and "legacy_secret" not in res.stdout and "host-net" not in res.stdout
    tasks = wait_converged(lab, "all", {"all_api": 2, "all_cache-svc": 3}, healthy={"all_api"})
    api = sorted((t for t in tasks if stacklab.service_of(t) == "all_api"), key=lambda t: t["Name"])
    assert sorted(t["Node"] for t in api) == ["worker1", "worker2"]

    def completed() -> dict[str, int]:
        jobs = [t for t in lab.tasks("stack", "ps", "all") if stacklab.service_of(t) in ("all_migrate", "all_janitor")]
        return counts([t for t in jobs if t["CurrentState"].startswith("Complete")])

    # a job's task completes once; the janitor's (one per node) only with its two tmpfs mounted
    lab.wait_for(lambda: completed() == {"all_migrate": 1, "all_janitor": 3}, 60, "the jobs completed")

    one = api[0]
    sh = lambda script: in_task(lab, one, "sh", "-c", script).stdout  # noqa: E731
    assert sh("hostname; id -u; id -g; pwd") == f"api-{one['Name'].rsplit('.', 1)[1]}\n1000\n1000\n/srv/app\n"
    assert set(sh("id -G").split()) == {"1000", "50", "1234"}, "group_add: staff (by name) and 1234"
    env_seen = sh("env")
    for pair in ("MODE=production", "FROM_SHELL=yes", "SHARED=from-env-file", "LOG_LEVEL=info"):
        assert pair in env_seen.splitlines(), env_seen
    assert sh("cat /run/secrets/db_password /run/secrets/old_style /run/secrets/api.key; echo; stat -c '%a %u %g' /run/secrets/api.key") \
        == (STACKS / "db_password.txt").read_text() + "old style\nk-123\n400 1000 1000\n"
    assert sh("cat /api_conf /etc/motd") == "listen = 8080\nmode = strict\n" + (STACKS / "common.env").read_text()
    assert sh("cat /etc/api/api.conf /shared/hello") == "listen = 8080\nfrom the node\n"
    mounts = {f[1]: f for f in (line.split() for line in sh("cat /proc/mounts").splitlines())}
    for target in ("/data", "/var/log/api", "/cache", "/run"):
        assert target in mounts, target
    assert mounts["/etc/api"][3].startswith("ro") and mounts["/scratch"][2] == "tmpfs" and "size=65536k" in mounts["/scratch"][3]
    assert sh("stat -c %a /scratch") == "1777\n"
    assert in_task(lab, one, "touch", "/not-here", check=False).returncode != 0 and sh("touch /run/ok /scratch/ok && echo ok") == "ok\n"
    limits = sh("cat /proc/1/limits")
    assert any(line.startswith("Max open files") and line.split()[3:5] == ["2000", "4000"] for line in limits.splitlines()), limits
    assert sh("cat /proc/sys/net/core/somaxconn") == "1024\n"
    assert sh("grep CapBnd /proc/self/status").split() == ["CapBnd:", "0000000000001000"]  # NET_ADMIN only
    # the node's resolver stays first (it answers service names and forwards the rest to dns:, as docker's does)
    assert sh("cat /etc/resolv.conf").split("\n")[1:3] == ["search example.internal", "options ndots:2 timeout:1"]
    assert sh("cat /proc/1/comm") != "httpd\n", "init: true puts an init at PID 1"

    spec = inspect(lab, "svc", "all_api")["Spec"]
    c = spec["TaskTemplate"]["ContainerSpec"]
    assert c["Labels"]["com.example.description"] == "the API" and spec["Labels"]["com.example.team"] == "platform"
    assert (c["LogDriver"], c["LogOptions"]) == ("json-file", {"max-size": "10m", "max-file": "3"}), c
    assert c["StopSignal"] == "SIGTERM" and c["StopGracePeriod"] == 2 * 10**9
    assert spec["TaskTemplate"]["Resources"]["Limits"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20, "Pids": 100}
    assert spec["RollbackConfig"]["Monitor"] == 65_020_000_000 and spec["UpdateConfig"]["MaxFailureRatio"] == 0.1

    # the services' names on back: api's VIP under its aliases, cache-svc (dnsrr) as its three task addresses
    cache = next(t for t in tasks if stacklab.service_of(t) == "all_cache-svc")
    got = netlab.resolve(lab, cache, "api-server", "backend-api", "api", "all_api", "cache-svc", "all_cache-svc", "tasks.all_cache-svc")
    assert got["api-server"] and got["api-server"] == got["backend-api"] == got["api"] == got["all_api"], got
    assert got["cache-svc"] and len(got["cache-svc"]) == 3 and got["cache-svc"] == got["all_cache-svc"] == got["tasks.all_cache-svc"], got
    served_by(lab, "manager1", 9090, {t["Name"] for t in api})
    front = inspect(lab, "network", "all_front")
    assert front["IPAM"]["Config"][0]["Subnet"] == "10.20.0.0/24" and front["Labels"]["com.example.net"] == "front"

    lab.shoal("stack", "rm", "all")
    assert leftovers(lab, "all") == {"svc": [], "network": [], "secret": [], "config": []}
    assert "motd-v1" not in lab.shoal("config", "ls").stdout, "a stack config with its own name: is the stack's"
    assert "legacy_secret" in lab.shoal("secret", "ls").stdout and "host-net" in lab.shoal("network", "ls").stdout, "external: kept"
