"""``node inspect self``, ``svc inspect`` and ``task inspect`` through the CLI against a real manager:
docker's shapes from real objects."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from shoal.cli.main import main
from shoal.proto import control_pb2 as cpb
from tests.fixtures.cluster import Cluster, running_n, spec


def cli(cluster: Cluster, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["-H", f"unix://{cluster.tmp / 'm.sock'}", *args])


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
