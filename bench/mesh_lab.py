"""``bench/mesh.py --lab``: the routing mesh of a real lab (1 drained manager, 2 workers), through the CLI.

Service ``mesh`` (the keep-alive HTTP server of ``_httpload``, ``host`` image) runs one task on worker1,
on overlay ``bench``, port 8080 published as 30080; service ``peer`` (a sleeping task on worker2) puts
worker2 on ``bench`` too. The load generator is manager1's namespace (it runs no task):

* direct: to the task's own address (manager1 routes worker1's task subnet via worker1): one router;
* direct, 2 hops: the same, routed through worker2 both ways (routes for the task subnet and for
  manager1's address only): as many routers as the mesh path, without its NAT and VXLAN;
* mesh, local: worker1's published port (the task runs there: DNAT, the client's address kept);
* mesh: worker2's published port (no task there): with the lab's ``--direct-routing``, direct server
  return (worker/network/dsr.py: worker2 forwards the packets unchanged to worker1, which DNATs them and
  answers the client itself);
* mesh_routed: the same port published a second time (PORT + 1), which the bench takes out of worker2's
  direct server return (a rule of its own at the head of worker2's netdev table): the conntrack mesh
  through worker2 (DNAT, masquerade, routed to worker1), as before direct server return.

Every round runs the four paths back to back from the same client (``_rounds``); ``ratio`` on the last
line is the median of the per-round mesh / direct ratios, the issue's figure; ``same_hops_ratio`` is
mesh / direct_2hops (what the mesh's NAT and VXLAN cost over a plain path through as many nodes), and
``mesh_local_ratio`` mesh_local / direct (the mesh on the task's own node, one router either way).

Endpoint convergence: ``mesh`` starts at 0 replicas; with pollers already running (worker2's namespace
asking the VIP, manager1 asking worker2's published port, each a new connection every few ms), it is
scaled to 1, and the time from the task's RUNNING report (its status timestamp, from the control
API) to the first answer through each is printed.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from _httpload import SERVER
from _rounds import client_line, interleaved, print_rounds, print_table, summary

SHOAL = str(Path(sys.executable).parent / "shoal")
NAME = f"bmesh{os.getpid() % 10000}"
PORT, TARGET = 30080, 8080
ROUTED_PORT = PORT + 1  # the same task, left to the conntrack mesh (see ``without_dsr``)

# polls host:port with a GET on a new connection until one is answered; prints the wall time of that answer
POLL = r"""
import socket, sys, time
host, port, deadline = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
print("polling", flush=True)
while time.time() < deadline:
    try:
        with socket.create_connection((host, port), timeout=0.2) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                print(time.time(), flush=True)
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.005)
print("nan", flush=True)
"""


class LabRun:
    """One lab for the run; ``close`` takes it down (``lab down`` removes everything it made)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="shoal-bench-mesh-"))
        self.env = {**{k: v for k, v in os.environ.items() if k not in ("SHOAL_HOST", "SHOAL_LAB")},
                    "SHOAL_LAB_DIR": str(self.root)}
        os.environ["SHOAL_LAB_DIR"] = str(self.root)  # for shoal.lab.state.load in this process
        self.nodes: dict[str, dict] = {}

    def run(self, *args: str, timeout: float = 180) -> str:
        res = subprocess.run([SHOAL, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise RuntimeError(f"shoal {' '.join(args)} failed ({res.returncode}): {res.stdout}{res.stderr}")
        return res.stdout

    def shoal(self, *args: str) -> str:
        return self.run("--lab", NAME, *args)

    def up(self) -> None:
        self.run("lab", "up", "--name", NAME, "--managers", "1", "--workers", "2", timeout=300)
        from shoal.lab.state import load as load_lab

        self.nodes = {n.name: {"addr": n.addr, "netns": n.netns} for n in load_lab(NAME).nodes}

    def tasks(self, service: str) -> list:
        from shoal.lab.cluster import host_for
        from shoal.proto import control_pb2, control_pb2_grpc

        with grpc.insecure_channel(host_for(NAME)) as ch:
            stub = control_pb2_grpc.ControlStub(ch)
            return list(stub.ListTasks(control_pb2.ListTasksRequest(service_ids=[service]), timeout=10).tasks)

    def running(self, service: str, timeout: float = 120):  # noqa: ANN201 - a pb.Task
        from shoal.proto import types_pb2 as pb

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = [t for t in self.tasks(service) if t.desired_state == pb.RUNNING and t.status.state == pb.RUNNING]
            if live:
                return live[0]
            time.sleep(0.05)
        raise RuntimeError(f"no running task of {service} within {timeout} s")

    def vip(self, service: str, network: str) -> str:
        (svc,) = json.loads(self.shoal("svc", "inspect", service))
        (net,) = json.loads(self.shoal("network", "inspect", network))
        return next(v["Addr"].split("/")[0] for v in svc["Endpoint"]["VirtualIPs"] if v["NetworkID"] == net["Id"])

    def poller(self, node: str, host: str, port: int, secs: float) -> subprocess.Popen[str]:
        p = subprocess.Popen(["ip", "netns", "exec", self.nodes[node]["netns"], sys.executable, "-c", POLL, host,
                              str(port), str(secs)], stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdout.readline().strip() == "polling"
        return p

    def close(self) -> None:
        subprocess.run([SHOAL, "lab", "down", "--name", NAME], env=self.env, capture_output=True, timeout=300)


def first_answer(p: subprocess.Popen[str]) -> float:
    out, _ = p.communicate(timeout=120)
    return float(out.strip().splitlines()[-1])


def converge(lab: LabRun) -> dict[str, float]:
    """Scale ``mesh`` 0 -> 1 with pollers running; seconds from the task's RUNNING to the first answers."""
    vip = lab.vip("mesh", "bench")
    vip_poll = lab.poller("worker2", vip, TARGET, 90)
    mesh_poll = lab.poller("manager1", lab.nodes["worker2"]["addr"], PORT, 90)
    lab.shoal("svc", "scale", "mesh=1", "--detach")
    task = lab.running("mesh")
    running_at = task.status.timestamp_ns / 1e9
    return {"vip_converge_s": first_answer(vip_poll) - running_at,
            "mesh_converge_s": first_answer(mesh_poll) - running_at}


def setup(lab: LabRun) -> None:
    lab.up()
    py = os.path.realpath(sys.executable)  # a host-image container runs the interpreter itself
    lab.shoal("network", "create", "bench")
    lab.shoal("svc", "create", "--name", "peer", "--network", "bench", "--constraint", "node.hostname==worker2",
              "--detach", "host", py, "-c", "import time; time.sleep(1e6)")
    lab.shoal("svc", "create", "--name", "mesh", "--replicas", "0", "--network", "bench", "-p", f"{PORT}:{TARGET}",
              "-p", f"{ROUTED_PORT}:{TARGET}", "--constraint", "node.hostname==worker1", "--detach", "host", py, "-c", SERVER, "t1", str(TARGET))
    lab.running("peer")


def two_hop_address(lab: LabRun, task: object, subnet: str) -> str:
    """Routes so that manager1 reaches the task at its bridge address directly via worker1, and at a
    second address of it (a /32 on its eth0, in no subnet of the cluster) through worker2 both ways."""
    m1, w1, w2 = (lab.nodes[n] for n in ("manager1", "worker1", "worker2"))
    second = "10.254.77.7"
    in_task = task_netns(lab, task)
    subprocess.run(["ip", "-n", m1["netns"], "route", "replace", subnet, "via", w1["addr"]], check=True)
    subprocess.run(["ip", "-n", m1["netns"], "route", "replace", f"{second}/32", "via", w2["addr"]], check=True)
    subprocess.run(["ip", "-n", w2["netns"], "route", "replace", f"{second}/32", "via", w1["addr"]], check=True)
    subprocess.run(["ip", "-n", w1["netns"], "route", "replace", f"{second}/32", "dev", "shoal0"], check=True)
    subprocess.run([*in_task, "ip", "addr", "add", f"{second}/32", "dev", "eth0"], check=True)
    # replies from the second address go back through worker2: a rule for its source, in the task's namespace
    subprocess.run([*in_task, "ip", "route", "replace", m1["addr"], "via",
                    str(ipaddress.IPv4Interface(task.bridge_address).network.network_address + 1),  # type: ignore[attr-defined]
                    "table", "77"], check=True)
    subprocess.run([*in_task, "ip", "rule", "add", "from", second, "table", "77"], check=True)
    subprocess.run(["ip", "-n", w1["netns"], "route", "replace", m1["addr"], "via", w2["addr"], "table", "77"], check=True)
    subprocess.run(["ip", "-n", w1["netns"], "rule", "add", "from", second, "table", "77"], check=True)
    return second


def task_netns(lab: LabRun, task: object) -> list[str]:
    """The command prefix that runs a command in the task's network namespace. worker1's agent keeps it
    under its data dir, mounted in worker1's own mount namespace (shoal.lab.mountns): entered first, so
    that the namespace file is there to open."""
    from shoal.lab.state import load as load_lab

    node = next(n for n in load_lab(NAME).nodes if n.name == "worker1")
    path = Path(node.data_dir) / "agent" / "net" / task.id / "netns"  # type: ignore[attr-defined]
    return ["nsenter", f"--mount={node.mntns}", "nsenter", f"--net={path}"]


def without_dsr(lab: LabRun, timeout: float = 30) -> None:
    """Leave ROUTED_PORT to worker2's conntrack mesh: a rule at the head of its netdev table's ingress chain
    (the agent rewrites that chain only when it replaces the table whole, on a restart)."""
    w2 = lab.nodes["worker2"]["netns"]
    deadline = time.monotonic() + timeout
    while "shoal-dsr-eth0" not in subprocess.run(["ip", "netns", "exec", w2, "nft", "list", "tables"],
                                                 capture_output=True, text=True).stdout:
        if time.monotonic() > deadline:
            raise RuntimeError("worker2 has no direct server return table (is --direct-routing on?)")
        time.sleep(0.1)
    subprocess.run(["ip", "netns", "exec", w2, "nft", "insert", "rule", "netdev", "shoal-dsr-eth0", "uplink-in",
                    "tcp", "dport", str(ROUTED_PORT), "accept"], check=True)


def run_lab(conns: int, secs: float, tool: str, rounds: int) -> dict[str, float]:
    from mesh import key_figures

    lab = LabRun()
    try:
        setup(lab)
        conv = converge(lab)
        task = lab.running("mesh")
        bridge = task.bridge_address  # a.b.c.d/prefix on worker1's task bridge
        subnet = str(ipaddress.IPv4Interface(bridge).network)
        task_ip = bridge.split("/")[0]
        two_hops = two_hop_address(lab, task, subnet)
        without_dsr(lab)
        w2 = lab.nodes["worker2"]["addr"]
        paths = [("direct", task_ip, TARGET), ("direct_2hops", two_hops, TARGET),
                 ("mesh_local", lab.nodes["worker1"]["addr"], PORT), ("mesh", w2, PORT), ("mesh_routed", w2, ROUTED_PORT)]
        runs = interleaved(lab.nodes["manager1"]["netns"], paths, conns, secs, tool, rounds)
        res = summary(runs)
        over_routed = summary(runs, "mesh_routed")["mesh"]  # direct server return against the conntrack mesh
        print(f"lab {NAME}: 1 drained manager (the load generator), 2 workers, task on worker1; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(client_line(runs, conns, secs, rounds) + "\n")
        print_rounds(runs)
        print_table(res)
        print(f"\ntask RUNNING -> first answer through its VIP (from worker2): {conv['vip_converge_s']:.3f} s; "
              f"through worker2's published port: {conv['mesh_converge_s']:.3f} s (target <= 1 s)")
        return {**key_figures(res), "same_hops_ratio": summary(runs, "direct_2hops")["mesh"]["ratio"],
                "mesh_local_ratio": res["mesh_local"]["ratio"], "mesh_routed_ratio": res["mesh_routed"]["ratio"],
                "dsr_over_routed_ratio": over_routed["ratio"], "dsr_over_routed_cpu_ratio": over_routed["cpu_ratio"],
                "direct_2hops_ratio": res["direct_2hops"]["ratio"],
                "vip_converge_ms": 1000 * conv["vip_converge_s"], "mesh_converge_ms": 1000 * conv["mesh_converge_s"]}
    finally:
        lab.close()
