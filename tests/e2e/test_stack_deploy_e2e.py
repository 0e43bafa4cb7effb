"""Stacks as a user runs them: deploy a 3-service stack, change it, re-deploy, prune, remove.

A real manager and worker (processes, etcd, containers of the built-in ``host`` image and a busybox
image loaded into the cluster); every step through the ``shoal`` CLI. The stack's default network,
secret and config are created before its services. A re-deploy converges: only the changed services
are updated (a new image and environment roll api's task; a replica count only scales web), services
gone from the file stay until ``--prune``, and ``stack rm`` leaves no service, network, secret or
config of the stack behind.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.clicluster import CliCluster
from tests.fixtures import busybox_image

STACK = """
services:
  web:
    image: host
    command: ["sleep", "1000"]
    stop_grace_period: 1s
    deploy: {replicas: 2, labels: {tier: front}}
  api:
    image: host
    command: sleep 1001
    stop_grace_period: 1s
    environment: [MODE=one]
    secrets: [token]
    configs: [{source: settings, target: /run/settings}]  # the host image's root is read-only: files go under /run
  agent:
    image: host
    command: sleep 1002
    stop_grace_period: 1s
    deploy: {mode: global}
secrets:
  token: {file: ./token.txt}
configs:
  settings: {content: "level = 1"}
"""


def running_tasks(c: CliCluster, stack: str) -> list[dict]:
    return [t for t in c.json("stack", "ps", stack) if t["DesiredState"] == "Running" and t["CurrentState"].startswith("Running")]


def running(c: CliCluster, stack: str) -> dict[str, int]:
    """Running tasks by service name (from ``stack ps``)."""
    out: dict[str, int] = {}
    for t in running_tasks(c, stack):
        svc = str(t["Name"]).rsplit(".", 1)[0]
        out[svc] = out.get(svc, 0) + 1
    return out


def deploy(c: CliCluster, path: Path, *extra: str):
    return c.shoal("stack", "deploy", "-c", str(path), *extra, "app")


def test_deploy_redeploy_prune_and_remove_a_stack(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    path = tmp_path / "stack.yml"
    path.write_text(STACK)
    (tmp_path / "token.txt").write_text("t0ken")
    busybox_image.build(str(tmp_path / "busybox.tar"), tag="busybox:latest")
    c.shoal("image", "load", "--cluster", "-i", str(tmp_path / "busybox.tar"))
    res = deploy(c, path)
    assert "Creating service app_web" in res.stdout and "Creating service app_agent" in res.stdout
    assert res.stdout.index("Creating network app_default") < res.stdout.index("Creating service")
    assert "Creating secret app_token" in res.stdout and "Creating config app_settings" in res.stdout
    assert "app_default" in c.shoal("network", "ls").stdout
    assert c.shoal("stack", "ls").stdout.split("\n")[1].split() == ["app", "3"]
    c.wait_for(lambda: running(c, "app") == {"app_web": 2, "app_api": 1, "app_agent": 2}, timeout=60, what="5 tasks running")
    agent_tasks = {t["ID"] for t in c.json("stack", "ps", "app") if str(t["Name"]).startswith("app_agent")}
    live = {t["ID"]: t["Name"] for t in c.json("stack", "ps", "app") if t["DesiredState"] == "Running"}

    changed = STACK.replace("replicas: 2", "replicas: 3").replace("MODE=one", "MODE=two")
    path.write_text(changed.replace("image: host\n    command: sleep 1001", "image: busybox:latest\n    command: sleep 1001"))
    plan = deploy(c, path, "--dry-run").stdout
    assert '    replicas: "2" => "3"' in plan and '    container.env: ["MODE=one"] => ["MODE=two"]' in plan
    assert '    container.image: "host" => "busybox:latest"' in plan, plan
    assert "  service app_agent: unchanged" in plan
    assert running(c, "app")["app_web"] == 2, "--dry-run changes nothing"

    res = deploy(c, path)
    assert "Updating service app_web" in res.stdout and "Updating service app_api" in res.stdout
    assert "app_agent" not in res.stdout
    c.wait_for(lambda: running(c, "app").get("app_web") == 3, timeout=60, what="web scaled to 3")
    assert {t["ID"] for t in c.json("stack", "ps", "app") if str(t["Name"]).startswith("app_agent")} == agent_tasks
    assert '"MODE=two"' in c.shoal("svc", "inspect", "app_api").stdout
    # the new image and environment rolled api's task (the rolling update); web only scaled: its tasks stayed
    c.wait_for(lambda: [t["Image"] for t in running_tasks(c, "app") if t["Name"].startswith("app_api")] == ["busybox:latest"],
               timeout=60, what="api's replacement running the new image")
    now = {t["ID"]: t["Name"] for t in c.json("stack", "ps", "app") if t["DesiredState"] == "Running"}
    assert {i for i, n in live.items() if n.startswith("app_web")} <= set(now)
    assert not {i for i, n in live.items() if n.startswith("app_api")} & set(now)

    path.write_text(STACK.replace("replicas: 2", "replicas: 3").split("  api:")[0])
    res = deploy(c, path)
    assert "Service app_api is not in the stack file; kept" in res.stderr + res.stdout
    assert "app_api" in c.shoal("stack", "services", "app").stdout
    res = deploy(c, path, "--prune")
    assert "Removing service app_api" in res.stdout
    names = {s["Name"] for s in c.json("stack", "services", "app")}
    assert names == {"app_web"}

    res = c.shoal("stack", "rm", "app")
    assert "Removing service app_web" in res.stdout and "Removing network app_default" in res.stdout
    assert "Removing secret app_token" in res.stdout and "Removing config app_settings" in res.stdout
    assert "app_default" not in c.shoal("network", "ls").stdout
    for kind in ("svc", "secret", "config"):
        assert "app_" not in c.shoal(kind, "ls").stdout, kind
    assert c.shoal("stack", "services", "app", check=False).returncode == 1


def test_a_broken_stack_file_deploys_nothing(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    path = tmp_path / "stack.yml"
    path.write_text(STACK.replace("    deploy: {mode: global}\n", "    deploy: {mode: global}\n    deploy: {replicass: 2}\n"))
    res = c.shoal("stack", "deploy", "-c", str(path), "app", check=False)
    assert res.returncode == 1
    assert f"{path}:" in res.stderr and "services.agent: duplicate key 'deploy'" in res.stderr
    assert "app_" not in c.shoal("svc", "ls").stdout


DEPENDS = """
services:
  db:
    image: host
    command: ["sh", "-c", "sleep 10; touch /tmp/ready; exec sleep 1000"]
    stop_grace_period: 1s
    healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 1s, start_period: 30s}
  web:
    image: host
    command: sleep 1000
    stop_grace_period: 1s
    depends_on: {db: {condition: service_healthy}}
"""


def test_a_dependent_service_waits_until_its_dependency_is_healthy(shared_cli_cluster: CliCluster, tmp_path: Path):
    c = shared_cli_cluster
    path = tmp_path / "stack.yml"
    path.write_text(DEPENDS)
    deploy(c, path)

    def web_tasks() -> list[dict]:
        return [t for t in c.json("stack", "ps", "app") if str(t["Name"]).startswith("app_web")]

    c.wait_for(lambda: "waiting for app_db: service_healthy" in c.shoal("svc", "ps", "--no-trunc", "app_web").stdout,
               timeout=30, what="svc ps saying web waits for db")
    held = web_tasks()
    assert held and all(t["CurrentState"].startswith("Pending") for t in held), held
    c.wait_for(lambda: running(c, "app") == {"app_db": 1, "app_web": 1}, timeout=60, what="web running once db is healthy")
    c.shoal("stack", "rm", "app")
