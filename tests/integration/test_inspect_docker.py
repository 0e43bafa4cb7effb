"""``node inspect self``, ``svc inspect`` and ``task inspect`` through the CLI against a real manager:
docker's shapes from real objects."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from click.testing import CliRunner

from shoal.cli.main import main
from shoal.proto import control_pb2 as cpb
from tests.fixtures.cluster import Cluster, running_n, spec

SHOAL = str(Path(sys.executable).parent / "shoal")


def cli(cluster: Cluster, *args: str) -> SimpleNamespace:
    """The CLI as a process of its own: run in-process (CliRunner swaps sys.stdout), the cluster's log lines
    from the same process landed in the command's output (seen in CI as JSON with a log line before it)."""
    res = subprocess.run([SHOAL, "-H", f"unix://{cluster.tmp / 'm.sock'}", *args], capture_output=True, text=True, timeout=60)
    return SimpleNamespace(exit_code=res.returncode, stdout=res.stdout, output=res.stdout + res.stderr)


async def test_inspect_self_service_and_task(cluster: Cluster) -> None:
    await cluster.add_agent("w1")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=1)))
    (task,) = await cluster.until(lambda: running_n(cluster, "web", 1))
    # this manager runs no agent here (a `shoal manager` process does): self names a node that is not there
    me = await asyncio.to_thread(cli, cluster, "node", "inspect", "self")
    assert me.exit_code == 1 and "no such node: self" in me.output
    w1 = await asyncio.to_thread(cli, cluster, "node", "inspect", "w1")
    (node,) = json.loads(w1.stdout)
    assert node["Description"]["Hostname"] == "w1" and node["Spec"]["Role"] == "worker" and node["Status"]["State"] == "ready"
    assert node["CreatedAt"].endswith("Z") and node["Version"]["Index"] > 0
    svc = await asyncio.to_thread(cli, cluster, "svc", "inspect", "--format", "{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}} {{.Spec.TaskTemplate.ContainerSpec.Image}}", "web")
    assert svc.stdout == "web 1 host\n", svc.output
    t = await asyncio.to_thread(cli, cluster, "task", "inspect", task.id)
    (doc,) = json.loads(t.stdout)
    assert (doc["ID"], doc["Status"]["State"], doc["DesiredState"], doc["Slot"]) == (task.id, "running", "running", 1)
    pretty = await asyncio.to_thread(cli, cluster, "node", "inspect", "--pretty", "w1")
    assert "Hostname:\t\tw1" in pretty.stdout and " State:\t\t\tReady" in pretty.stdout


# docker's field names (github.com/docker/docker/api/types/swarm, mount, container) for ContainerSpec and the
# structs under it: a key outside these is a shoal name leaking into output scripts read as docker's
DOCKER_FIELDS = {
    "ContainerSpec": {"Image", "Labels", "Command", "Args", "Hostname", "Env", "Dir", "User", "Groups", "Privileges",
                      "Init", "StopSignal", "TTY", "OpenStdin", "ReadOnly", "Mounts", "StopGracePeriod", "Healthcheck",
                      "Hosts", "DNSConfig", "Secrets", "Configs", "Isolation", "Sysctls", "CapabilityAdd",
                      "CapabilityDrop", "Ulimits", "OomScoreAdj"},
    "Mounts": {"Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions", "TmpfsOptions"},
    "BindOptions": {"Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive"},
    "VolumeOptions": {"NoCopy", "Labels", "Subpath", "DriverConfig"},
    "TmpfsOptions": {"SizeBytes", "Mode", "Options"},
    "Secrets": {"File", "SecretID", "SecretName"},
    "Configs": {"File", "Runtime", "ConfigID", "ConfigName"},
    "File": {"Name", "UID", "GID", "Mode"},
    "Healthcheck": {"Test", "Interval", "Timeout", "StartPeriod", "StartInterval", "Retries"},
    "Ulimits": {"Name", "Hard", "Soft"},
    "DNSConfig": {"Nameservers", "Search", "Options"},
    "Privileges": {"CredentialSpec", "SELinuxContext", "Seccomp", "AppArmor", "NoNewPrivileges"},
    "Seccomp": {"Mode", "Profile"},
    "TaskTemplate.Resources": {"Limits", "Reservations"},  # a node's Description.Resources is another struct
    "Spec.Resources": {"Limits", "Reservations"},  # a task's Spec is a TaskTemplate
    "Limits": {"NanoCPUs", "MemoryBytes", "Pids"},
    "Reservations": {"NanoCPUs", "MemoryBytes", "GenericResources"},
    "RestartPolicy": {"Condition", "Delay", "MaxAttempts", "Window"},
    "Placement": {"Constraints", "Preferences", "MaxReplicas", "Platforms"},
}
USER_KEYS = {"Labels", "Sysctls", "PendingTasks"}  # maps whose keys are the user's, not field names
NOT_DOCKER_CASE = re.compile(r"(Id|Ids|Ip|Ips|Uid|Gid|Dns|Cpus?|Ns)(?=[A-Z]|$)")

EVERY_FLAG = [
    "--name", "all", "--replicas", "1", "-e", "A=1", "-w", "/srv", "-u", "1000:1000", "--hostname", "{{.Service.Name}}-x",
    "-l", "a=b", "--container-label", "c=d", "--entrypoint", "/bin/sh", "--limit-cpu", "1", "--limit-memory", "64m",
    "--limit-pids", "100", "--reserve-cpu", "0.5", "--reserve-memory", "32m", "--constraint", "node.role==worker",
    "--placement-pref", "spread=node.labels.zone", "--replicas-max-per-node", "2", "--restart-condition", "on-failure",
    "--restart-delay", "2s", "--restart-max-attempts", "3", "--restart-window", "1m", "--update-parallelism", "2",
    "--update-delay", "1s", "--update-failure-action", "rollback", "--update-monitor", "3s", "--update-max-failure-ratio",
    "0.5", "--update-order", "start-first", "--rollback-parallelism", "1", "--rollback-order", "stop-first",
    "--health-cmd", "true", "--health-interval", "1s", "--health-timeout", "2s", "--health-retries", "4",
    "--health-start-period", "3s", "--health-start-interval", "1s", "-p", "8080:80", "--stop-grace-period", "7s", "--init",
    "--mount", "type=volume,source=data,target=/data,volume-nocopy",
    "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m,tmpfs-mode=1700",
    "--mount", "type=bind,source=/etc,target=/hostetc,readonly,bind-propagation=rslave",
    "--read-only", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", "--stop-signal", "SIGUSR1", "--ulimit", "nofile=100:200",
    "--sysctl", "net.core.somaxconn=1024", "--group", "wheel", "--dns", "1.1.1.1", "--dns-search", "example.com",
    "--dns-option", "ndots:2", "--security-opt", "seccomp=unconfined", "--secret", "source=pw,target=p,uid=1,gid=2,mode=0400",
    "--config", "source=conf,target=/etc/c", "--no-resolve-image", "-d", "host", "-c", "sleep 100",
]  # fmt: skip


def _bad_keys(doc: object, path: str = "") -> list[str]:
    """Every key under ``doc`` that is not docker-cased, or not one of docker's names where ``DOCKER_FIELDS`` says."""
    bad: list[str] = []
    if isinstance(doc, list):
        for i, item in enumerate(doc):
            bad += _bad_keys(item, f"{path}[{i}]")
    elif isinstance(doc, dict):
        parts = [p.split("[")[0] for p in path.split(".")]
        struct = ".".join(parts[-2:]) if ".".join(parts[-2:]) in DOCKER_FIELDS else parts[-1]
        for key, value in doc.items():
            if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", key) or NOT_DOCKER_CASE.search(key):
                bad.append(f"{path}.{key}")
            elif struct in DOCKER_FIELDS and key not in DOCKER_FIELDS[struct]:
                bad.append(f"{path}.{key} (not a field of docker's {struct})")
            if key not in USER_KEYS:
                bad += _bad_keys(value, f"{path}.{key}")
    return bad


async def test_every_key_of_a_service_made_with_every_flag_is_dockers(cluster: Cluster) -> None:
    await cluster.add_agent("w1")
    for kind, name in (("secret", "pw"), ("config", "conf")):
        made = await asyncio.to_thread(CliRunner().invoke, main, ["-H", f"unix://{cluster.tmp / 'm.sock'}", kind, "create", name, "-"], input="v")
        assert made.exit_code == 0, made.output
    created = await asyncio.to_thread(cli, cluster, "svc", "create", *EVERY_FLAG)
    assert created.exit_code == 0, created.output
    (task,) = await cluster.until(lambda: cluster.tasks_of("all"))
    docs = {}
    for what, ref in (("svc", "all"), ("task", task.id), ("node", "w1")):
        r = await asyncio.to_thread(cli, cluster, what, "inspect", ref)
        assert r.exit_code == 0, r.output
        (docs[what],) = json.loads(r.stdout)
        assert _bad_keys(docs[what]) == [], what
    c = docs["svc"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert docs["task"]["Spec"]["ContainerSpec"] == c
    assert c["Mounts"] == [
        {"Type": "volume", "Source": "data", "Target": "/data", "VolumeOptions": {"NoCopy": True}},
        {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1 << 20, "Mode": 0o1700}},
        {"Type": "bind", "Source": "/etc", "Target": "/hostetc", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
    ]
    secret_id = (await cluster.control.GetSecret(cpb.GetSecretRequest(secret_id="pw"))).secret.id
    assert c["Secrets"] == [{"SecretID": secret_id, "SecretName": "pw", "File": {"Name": "p", "UID": "1", "GID": "2", "Mode": 0o400}}]
    assert c["Configs"][0]["ConfigName"] == "conf" and c["Configs"][0]["File"]["Name"] == "/etc/c"
    assert (c["ReadOnly"], c["Init"], c["StopSignal"], c["User"], c["Dir"], c["Groups"]) == (True, True, "SIGUSR1", "1000:1000", "/srv", ["wheel"])
    assert (c["CapabilityAdd"], c["CapabilityDrop"], c["Sysctls"]) == (["NET_ADMIN"], ["CHOWN"], {"net.core.somaxconn": "1024"})
    assert c["Ulimits"] == [{"Name": "nofile", "Soft": 100, "Hard": 200}] and c["Privileges"] == {"Seccomp": {"Mode": "unconfined"}}
    assert c["DNSConfig"] == {"Nameservers": ["1.1.1.1"], "Search": ["example.com"], "Options": ["ndots:2"]}
    assert c["Healthcheck"]["Interval"] == 10**9 and c["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]
    assert c["StopGracePeriod"] == 7 * 10**9 and c["Hostname"] == "{{.Service.Name}}-x"
