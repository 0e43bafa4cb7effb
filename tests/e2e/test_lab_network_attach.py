"""``shoal run --network`` on a lab node: a standalone container on an attachable overlay network.

As ``docker run --network`` on a swarm node: the container, run with the CLI on a lab host
(``shoal lab exec worker1 -- shoal run ...``), gets an address on the network from the managers,
reaches the service ``web`` on it by name (the node's DNS responder), through its VIP and at its
tasks' addresses on both workers, and gives the address back when it ends (``--rm``, or ``-d`` then
exit). A network created without ``--attachable`` is refused with docker's words and nothing is made.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import netlab
from tests.e2e.clicluster import SHOAL
from tests.e2e.lab_fixtures import LabCli, running_lab
from tests.fixtures.httpclient import CLIENT
from tests.timing import scaled

pytestmark = pytest.mark.skipif(subprocess.run(["which", "nft"], capture_output=True).returncode != 0,
                                reason="needs nft (nftables)")

PYTHON = os.path.realpath(sys.executable)  # a host-image container has its own /tmp: no venv shim
# inside the container: where "web" and "tasks.web" point, 40 requests to web:80 by name, its own address
PROBE = CLIENT.replace("print(json.dumps(out))", """
print(json.dumps({"answers": out, "web": socket.gethostbyname("web"),
                  "tasks": sorted(socket.gethostbyname_ex("tasks.web")[2])}))
""")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCli]:
    tmp = tmp_path_factory.mktemp("attachlab")
    with running_lab(tmp / "labs", "att", "--workers", "2") as lab:
        netlab.load_demo_image(lab, tmp)
        lab.shoal("network", "create", "--attachable", "apps")
        lab.shoal("network", "create", "sealed")
        lab.shoal("network", "create", "--attachable", "spare")  # no service: only standalone containers
        lab.shoal("svc", "create", "--name", "web", "--replicas", "2", "--network", "apps", "shoal-demo-lb")
        netlab.wait_running(lab, "web", 2)
        yield lab


def run_on(lab: LabCli, node: str, root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``shoal run --root ROOT ARGS`` on lab host ``node`` (its own cgroup parent, no lingering launcher)."""
    env = ["env", f"SHOAL_LOCAL_CGROUP_PARENT=shoal-test-{lab.name}", "SHOAL_LAUNCHER_LINGER_S=0"]
    argv = [SHOAL, "lab", "exec", "--name", lab.name, node, "--", *env, SHOAL, "run", "--root", str(root), *args]
    return subprocess.run(argv, env=lab.env, capture_output=True, text=True, timeout=scaled(timeout))


def containers(lab: LabCli, network: str) -> dict[str, dict]:
    (net,) = json.loads(lab.shoal("network", "inspect", network).stdout)
    return net["Containers"]


def addresses_on(lab: LabCli, service: str, network: str) -> list[str]:
    out = []
    for t in netlab.running_tasks(lab, service):
        (task,) = json.loads(lab.shoal("task", "inspect", t["ID"]).stdout)
        out += [a["Addresses"][0].split("/")[0] for a in task["NetworksAttachments"] if a["Network"]["Spec"]["Name"] == network]
    return sorted(out)


def test_a_standalone_container_reaches_the_service_by_name_vip_and_tasks(lab: LabCli, tmp_path: Path):
    res = run_on(lab, "worker1", tmp_path / "root", "--rm", "--network", "apps", "host",
                 PYTHON, "-c", PROBE, "web", "80", "40", netlab.WHOAMI)
    assert res.returncode == 0, res.stderr + lab.logs()
    got = json.loads(res.stdout)
    assert got["web"] == vip_of(lab, "web")  # the name is the VIP, answered by worker1's responder
    assert got["tasks"] == addresses_on(lab, "web", "apps")
    served = netlab.served_by(got["answers"])
    assert set(served) == {t["Name"] for t in netlab.running_tasks(lab, "web")}, got["answers"]
    nodes = {a.split("node=")[1].split()[0] for a in got["answers"] if "node=" in a}
    assert nodes == {"worker1", "worker2"}  # over the overlay to the other worker too
    lab.wait_for(lambda: containers(lab, "apps") == {}, 10, "the --rm container's address given back")


def vip_of(lab: LabCli, service: str) -> str:
    (svc,) = json.loads(lab.shoal("svc", "inspect", service).stdout)
    (vip,) = svc["Endpoint"]["VirtualIPs"]
    return vip["Addr"].split("/")[0]


def test_a_detached_container_holds_an_address_until_it_exits(lab: LabCli, tmp_path: Path):
    res = run_on(lab, "worker2", tmp_path / "root", "-d", "--name", "sleeper", "--network", "spare", "host", "sleep", "12")
    assert res.returncode == 0, res.stderr
    (entry,) = containers(lab, "spare").values()
    (net,) = json.loads(lab.shoal("network", "inspect", "spare").stdout)
    assert entry["Name"] == "sleeper" and ipaddress.ip_interface(entry["IPv4Address"]) in ipaddress.ip_network(
        net["IPAM"]["Config"][0]["Subnet"])
    refused = lab.shoal("network", "rm", "spare", check=False)
    assert refused.returncode != 0 and "has active endpoints (containers sleeper)" in refused.stderr
    lab.wait_for(lambda: containers(lab, "spare") == {}, 40, "the exited container's address given back by its node")
    lab.shoal("network", "rm", "spare")  # nothing holds it any more


def test_a_network_that_is_not_attachable_is_refused_with_nothing_made(lab: LabCli, tmp_path: Path):
    res = run_on(lab, "worker1", tmp_path / "root", "--rm", "--network", "sealed", "host", "true")
    assert res.returncode == 1 and "Could not attach to network sealed" in res.stderr
    assert "not manually attachable" in res.stderr, res.stderr
    assert containers(lab, "sealed") == {}
    unknown = run_on(lab, "worker1", tmp_path / "root", "--rm", "--network", "nope", "host", "true")
    assert unknown.returncode == 1 and "network nope not found" in unknown.stderr
    ps = subprocess.run([SHOAL, "ps", "-a", "--root", str(tmp_path / "root")], capture_output=True, text=True)
    assert ps.stdout.count("\n") <= 1  # no container was created


def test_an_attached_container_keeps_its_address_across_an_agent_restart(lab: LabCli, tmp_path: Path):
    root = tmp_path / "root"
    res = run_on(lab, "worker1", root, "-d", "--name", "keeper", "--network", "apps", "host", "sleep", "300")
    assert res.returncode == 0, res.stderr
    (held,) = containers(lab, "apps").values()
    lab.lab("kill", "worker1", "--agent-only")  # kill -9 of the daemon: the container runs on
    lab.lab("start", "worker1")
    netlab.wait_running(lab, "web", 2)
    time.sleep(3)  # a few reaper rounds of the restarted agent: the container still runs, its address stays
    assert list(containers(lab, "apps").values()) == [held]
    probe = run_on(lab, "worker1", root, "--rm", "--network", "apps", "host",
                   PYTHON, "-c", PROBE, "web", "80", "10", netlab.WHOAMI)
    assert probe.returncode == 0 and set(netlab.served_by(json.loads(probe.stdout)["answers"])) != {"error"}, probe.stderr
    argv = [SHOAL, "lab", "exec", "--name", lab.name, "worker1", "--", SHOAL, "rm", "-f", "--root", str(root), "keeper"]
    subprocess.run(argv, env=lab.env, capture_output=True, text=True, timeout=scaled(60), check=True)
    lab.wait_for(lambda: containers(lab, "apps") == {}, 20, "the removed container's address given back")
