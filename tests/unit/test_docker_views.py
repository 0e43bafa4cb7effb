"""``svc/node/task inspect`` print docker's shapes: the field names and values scripts written for docker read."""

from __future__ import annotations

import base64
import json

import pytest

from shoal.cli.docker_views import (
    container_doc,
    generic,
    iso,
    key_of,
    node_doc,
    service_doc,
    spec_doc,
    task_doc,
)
from shoal.cli.format import Format
from shoal.cli.node_views import check_filter_values, node_matches, pretty_node
from shoal.cli.task import find_task
from shoal.proto import types_pb2 as pb
from tests.fixtures.cli_fakes import FakeStub, run

S = pb.ServiceSpec
T0 = 1_700_000_000_123_456_789


def web() -> pb.Service:
    spec = S(name="web", replicas=3, labels={"team": "a"})
    spec.container.image = "nginx:1.25"
    spec.container.args.extend(["nginx", "-g", "daemon off;"])
    spec.container.env.append("A=1")
    spec.container.healthcheck.test.extend(["CMD", "true"])
    spec.container.healthcheck.interval_ns = 2_000_000_000
    spec.container.cap_add.append("NET_ADMIN")
    spec.container.mounts.add(type=pb.Mount.VOLUME, source="data", target="/data", readonly=True)
    spec.resources.limits.nano_cpus = 500_000_000
    spec.resources.limits.memory_bytes = 64 << 20
    spec.restart_policy.condition = pb.RestartPolicy.ON_FAILURE
    spec.placement.constraints.append("node.role==worker")
    spec.placement.preferences.add(spread="node.labels.zone")
    spec.update_config.order = pb.UpdateConfig.START_FIRST
    spec.ports.add(published_port=8080, target_port=80)
    spec.rebalance = True
    return pb.Service(id="s" * 25, meta=pb.Meta(version=7, created_at_ns=T0, updated_at_ns=T0 + 1), spec=spec)


def test_service_inspect_has_dockers_field_names_and_values() -> None:
    doc = service_doc(web(), {"no suitable node": ["web.1"]})
    assert (doc["ID"], doc["Version"], doc["CreatedAt"], doc["UpdatedAt"]) == ("s" * 25, {"Index": 7}, "2023-11-14T22:13:20.123456789Z", "2023-11-14T22:13:20.123456790Z")
    spec = doc["Spec"]
    assert spec["Name"] == "web" and spec["Labels"] == {"team": "a"} and spec["Mode"] == {"Replicated": {"Replicas": 3}}
    c = spec["TaskTemplate"]["ContainerSpec"]
    assert c["Image"] == "nginx:1.25" and c["Args"] == ["nginx", "-g", "daemon off;"] and c["Env"] == ["A=1"]
    assert c["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2_000_000_000} and c["CapabilityAdd"] == ["NET_ADMIN"]
    assert c["Mounts"] == [{"Type": "volume", "Source": "data", "Target": "/data", "ReadOnly": True}]
    tt = spec["TaskTemplate"]
    assert tt["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 << 20}}
    assert tt["RestartPolicy"] == {"Condition": "on-failure", "Delay": 5_000_000_000, "MaxAttempts": 0}
    assert tt["Placement"] == {"Constraints": ["node.role==worker"], "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]}
    assert spec["UpdateConfig"] == {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 5_000_000_000, "MaxFailureRatio": 0.0, "Order": "start-first"}
    assert spec["EndpointSpec"]["Ports"][0]["PublishedPort"] == 8080 and spec["EndpointSpec"]["Mode"] == "vip"
    assert spec["Rebalance"] is True  # shoal's own field, in the same style
    assert doc["PendingTasks"] == {"no suitable node": ["web.1"]}
    assert "created_at_ns" not in json.dumps(doc) and "spec" not in doc


@pytest.mark.parametrize(
    ("mode", "extra", "want"),
    [
        (S.GLOBAL, {}, {"Global": {}}),
        (S.REPLICATED_JOB, {"replicas": 5, "max_concurrent": 2}, {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 5}}),
        (S.GLOBAL_JOB, {}, {"GlobalJob": {}}),
        (S.REPLICATED, {}, {"Replicated": {"Replicas": 1}}),
    ],
)
def test_modes(mode: int, extra: dict, want: dict) -> None:
    assert spec_doc(S(name="x", mode=mode, **extra))["Mode"] == want


def test_docker_templates_work_on_the_docs() -> None:
    doc = service_doc(web())
    fmt = Format.parse("{{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}} {{.Spec.Mode.Replicated.Replicas}} {{.Version.Index}}")
    assert fmt.render_each([doc]) == "web nginx:1.25 3 7\n"


def test_task_inspect() -> None:
    spec = web().spec
    task = pb.Task(id="t" * 25, service_id="s" * 25, service_name="web", slot=2, node_id="n1", spec=spec, desired_state=pb.RUNNING,
                   meta=pb.Meta(version=3, created_at_ns=T0))  # fmt: skip
    task.status.CopyFrom(pb.TaskStatus(state=pb.RUNNING, timestamp_ns=T0, message="started", container_id="c1", pid=42, health=pb.HEALTH_HEALTHY))
    task.networks.add(network_id="net1", network="front", address="10.0.0.3/24")
    doc = task_doc(task)
    assert (doc["ID"], doc["ServiceID"], doc["Slot"], doc["NodeID"], doc["DesiredState"]) == ("t" * 25, "s" * 25, 2, "n1", "running")
    assert doc["Status"]["State"] == "running" and doc["Status"]["Timestamp"] == iso(T0) and doc["Status"]["Health"] == "healthy"
    assert doc["Status"]["ContainerStatus"] == {"ContainerID": "c1", "PID": 42, "ExitCode": 0}
    assert doc["Spec"]["ContainerSpec"]["Image"] == "nginx:1.25"
    assert doc["NetworksAttachments"] == [{"Network": {"ID": "net1", "Spec": {"Name": "front"}}, "Addresses": ["10.0.0.3/24"]}]
    assert doc["ServiceName"] == "web"


def node() -> pb.Node:
    n = pb.Node(id="n" * 25, meta=pb.Meta(version=4, created_at_ns=T0))
    n.spec.role = pb.NodeSpec.MANAGER
    n.spec.availability = pb.NodeSpec.DRAIN
    n.spec.labels["zone"] = "east"
    n.description.hostname = "host-1"
    n.description.platform_os, n.description.platform_arch = "linux", "x86_64"
    n.description.nano_cpus, n.description.memory_bytes = 2 * 10**9, 4 << 30
    n.description.engine_labels.update({"shoal.version": "0.1", "disk": "ssd"})
    n.status.state = pb.NodeStatus.READY
    n.status.addr = "10.0.0.1"
    n.manager_status.leader = True
    n.manager_status.addr = "10.0.0.1:4242"
    n.role_grant.mac = b"\x00secret"
    return n


def test_node_inspect() -> None:
    doc = node_doc(node())
    assert doc["Spec"] == {"Labels": {"zone": "east"}, "Role": "manager", "Availability": "drain"}
    assert doc["Description"]["Platform"] == {"Architecture": "x86_64", "OS": "linux"}
    assert doc["Description"]["Engine"] == {"EngineVersion": "0.1", "Labels": {"shoal.version": "0.1", "disk": "ssd"}}
    assert doc["Status"] == {"State": "ready", "Message": "", "Addr": "10.0.0.1"}
    assert doc["ManagerStatus"] == {"Leader": True, "Reachability": "reachable", "Addr": "10.0.0.1:4242"}
    assert "Mac" not in doc.get("RoleGrant", {})


@pytest.mark.parametrize(("recorded", "shown"), [("172.30.0.3:52706", "172.30.0.3"), ("10.0.0.1", "10.0.0.1"),
                                                ("[fd00::3]:4100", "fd00::3"), ("fd00::3", "fd00::3")])  # fmt: skip
def test_a_nodes_address_is_its_ip_without_the_port_its_session_came_from(recorded: str, shown: str) -> None:
    n = node()
    n.status.addr = recorded
    assert node_doc(n)["Status"]["Addr"] == shown and f" Address:\t\t{shown}\n" in pretty_node(n)


def test_node_pretty() -> None:
    text = pretty_node(node())
    assert "Hostname:\t\thost-1" in text and " State:\t\t\tReady" in text and " Availability:\t\tDrain" in text
    assert " Leader:\t\tYes" in text and " CPUs:\t\t\t2" in text and " Memory:\t\t4GiB" in text and " - disk=ssd" in text
    assert "Labels:\n - zone=east" in text


def test_node_filters() -> None:
    n = node()
    assert node_matches({"role": ["manager"], "name": ["host"], "id": ["nnn"]}, n)
    assert not node_matches({"role": ["worker"]}, n)
    assert node_matches({"node.label": ["zone=east"], "label": ["disk"]}, n) and not node_matches({"node.label": ["zone=west"]}, n)
    assert node_matches({"membership": ["accepted"]}, n) and not node_matches({"membership": ["pending"]}, n)
    assert check_filter_values({"role": ["boss"]}) == "invalid role filter 'boss': expected manager or worker"


def test_generic_style() -> None:
    assert key_of("max_attempts") == "MaxAttempts" and key_of("delay_ns") == "Delay" and key_of("id") == "ID"
    assert generic(pb.NodeSession(node_id="n", started_at_ns=T0)) == {"NodeID": "n", "StartedAt": iso(T0)}
    assert iso(0) == "0001-01-01T00:00:00Z"


def test_task_lookup() -> None:
    tasks = [pb.Task(id="abc" + "1" * 22), pb.Task(id="abd" + "2" * 22)]
    assert find_task(tasks, "abc") is tasks[0] and find_task(tasks, "ab") is None
    assert find_task(tasks, f"web.1.{tasks[1].id}") is tasks[1] and find_task(tasks, "zzz") is None


def test_cli_node_and_task_commands() -> None:
    fake = FakeStub()
    fake.nodes.append(node())
    svc = fake.add_service(S(name="web", replicas=1, container=pb.ContainerSpec(image="nginx")))
    r = run(fake, "node", "ls", "--filter", "role=manager", "-q")
    assert r.stdout.split() == ["n" * 25]
    assert run(fake, "node", "ls", "--filter", "role=worker", "-q").stdout == ""
    bad = run(fake, "node", "ls", "--filter", "colour=red")
    assert bad.exit_code == 2 and "invalid filter 'colour'" in bad.output
    assert run(fake, "node", "inspect", "--pretty", "host-1").stdout.startswith("ID:\t\t\t" + "n" * 25)
    task = next(t for t in fake.tasks if t.service_id == svc.id)
    out = run(fake, "task", "inspect", "--format", "{{.ServiceID}} {{.Status.State}}", task.id[:12])
    assert out.exit_code == 0 and out.stdout == f"{svc.id} running\n"
    missing = run(fake, "task", "inspect", "nope")
    assert missing.exit_code == 1 and "no such task: nope" in missing.stderr


def test_key_of_spells_gos_initialisms_in_capitals() -> None:
    assert [key_of(n) for n in ("secret_id", "uid", "gid", "vxlan_id", "virtual_ips", "delay_ns", "max_attempts")] == [
        "SecretID", "UID", "GID", "VxlanID", "VirtualIPs", "Delay", "MaxAttempts"]  # fmt: skip


def test_a_mount_nests_its_options_and_a_custom_seccomp_profile_is_base64() -> None:
    c = pb.ContainerSpec(image="x", seccomp_profile='{"defaultAction":"SCMP_ACT_ALLOW"}')
    c.mounts.add(type=pb.Mount.VOLUME, source="v", target="/v", volume_subpath="sub")
    c.mounts.add(type=pb.Mount.TMPFS, target="/t")
    doc = container_doc(c)
    assert doc["Mounts"] == [{"Type": "volume", "Source": "v", "Target": "/v", "VolumeOptions": {"Subpath": "sub"}},
                             {"Type": "tmpfs", "Target": "/t"}]  # fmt: skip
    seccomp = doc["Privileges"]["Seccomp"]
    assert seccomp["Mode"] == "custom" and base64.b64decode(seccomp["Profile"]) == c.seccomp_profile.encode()
    assert "Privileges" not in container_doc(pb.ContainerSpec(image="x"))


def test_every_key_of_an_inspect_view_is_a_known_field_name() -> None:
    """``field_names`` is what makes ``--format '{{.Spec.Nope}}'`` an error: a name a view writes but it
    lacks would make a valid template fail on an object where that field is empty."""
    from shoal.cli.docker_views import field_names
    from shoal.cli.format import keys_in
    from shoal.cli.template_exec import USER_MAPS

    svc = web()
    svc.previous_spec.CopyFrom(svc.spec)
    task = pb.Task(id="t" * 25, service_id="s", slot=1, node_id="n1", spec=svc.spec, desired_state=pb.RUNNING)
    task.status.CopyFrom(pb.TaskStatus(state=pb.RUNNING, timestamp_ns=T0, container_id="c1", pid=4, health=pb.HEALTH_HEALTHY))
    task.networks.add(network_id="net1", network="front", address="10.0.0.3/24")

    def keys(doc: object) -> set[str]:
        if isinstance(doc, dict):
            return {k for k, v in doc.items() for k in {k} | (set() if k in USER_MAPS else keys(v))}
        return set().union(*(keys(v) for v in doc)) if isinstance(doc, list) else set()

    for doc in (service_doc(svc), node_doc(node()), task_doc(task)):
        assert keys(doc) <= field_names(), keys(doc) - field_names()
        assert keys_in(doc) >= keys(doc)


def test_task_inspect_port_status_has_its_host_mode_ports() -> None:
    spec = web().spec
    spec.ports.add(published_port=8081, target_port=81, publish_mode=pb.PortConfig.HOST)
    task = pb.Task(id="t" * 25, service_id="s", slot=1, node_id="n1", spec=spec, desired_state=pb.RUNNING)
    task.status.state = pb.RUNNING
    assert task_doc(task)["Status"]["PortStatus"] == {
        "Ports": [{"Protocol": "tcp", "TargetPort": 81, "PublishedPort": 8081, "PublishMode": "host"}]}
    task.status.state = pb.PENDING
    assert task_doc(task)["Status"]["PortStatus"] == {}
