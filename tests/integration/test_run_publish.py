"""``shoal run -p HOST:CONTAINER`` on one node, as docker does: through the CLI, in a namespace "host".

The test's host ``h`` (a network namespace made here) has a client ``c`` on a veth (10.78.1.2 ->
10.78.1.1). ``shoal`` runs inside ``h`` (``nsenter --net``), so the launcher, shoal's standalone bridge,
its ``ip shoal-run`` table and the containers' namespaces are all made there and nowhere else. The
containers run the ``host`` image with netkit's HTTP server, which answers with its label and the
client address it sees.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoal.runtime.launcher.hostnet import netns_name, veth_name
from tests.integration.netkit import SERVER, Kit, clients, labels, needs_root, sh

pytestmark = [*needs_root, pytest.mark.skipif(sh("which", "nft", check=False) == "", reason="needs nft (nftables)")]

SHOAL = str(Path(sys.executable).parent / "shoal")
PY = os.path.realpath(sys.executable)  # a host-image container runs the interpreter itself


@dataclass
class Host:
    kit: Kit
    h: str
    c: str
    root: Path

    def shoal(self, *args: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SHOAL_LOCAL_CGROUP_PARENT": f"shoal-test-{self.kit.prefix}"}
        res = subprocess.run(["nsenter", f"--net={self.kit.path(self.h)}", SHOAL, *args, "--root", str(self.root)]
                             if args[0] not in ("run",) else
                             ["nsenter", f"--net={self.kit.path(self.h)}", SHOAL, "run", "--root", str(self.root),
                              *args[1:]], capture_output=True, text=True, env=env, timeout=90)
        if code is not None:
            assert res.returncode == code, (args, res.returncode, res.stdout, res.stderr)
        return res

    def web(self, name: str, port: str, *flags: str) -> str:
        """A detached server publishing ``port``; returns once it answers through it from ``c``."""
        cid = self.shoal("run", "-d", "--name", name, "-p", port, *flags, "host", PY, "-c", SERVER, name,
                         "80").stdout.strip()
        deadline = time.monotonic() + 30
        while self.kit.get(self.c, "10.78.1.1", int(port.split(":")[0]))[0].startswith("error"):
            assert time.monotonic() < deadline, f"{name} not answering on {port}: {self.shoal('logs', name).stdout}"
            time.sleep(0.2)
        return cid

    def in_h(self, *argv: str, check: bool = True) -> str:
        return sh("nsenter", f"--net={self.kit.path(self.h)}", *argv, check=check)

    def traces(self) -> list[str]:
        """What of shoal's standalone networking is in ``h``: the bridge, veths, the table, namespaces."""
        left = [ln.split(":")[1].strip() for ln in self.in_h("ip", "-o", "link").splitlines()
                if "shoalrun0" in ln or ": sr" in ln]
        if "shoal-run" in self.in_h("nft", "list", "tables"):
            left.append("table ip shoal-run")
        return left + [n for n in os.listdir("/run/netns") if n.startswith("shoalrun-") and self.mine(n)]

    def mine(self, netns: str) -> bool:
        ids = self.shoal("ps", "-aq", "--no-trunc").stdout.split()
        return any(netns == f"shoalrun-{i[:40]}" for i in ids)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    kit = Kit()
    h, c = kit.ns("h"), kit.ns("c")
    kit.veth(h, "ext0", c, "eth0")
    kit.ip(h, "addr add 10.78.1.1/24 dev ext0\n")
    kit.ip(c, "addr add 10.78.1.2/24 dev eth0\nroute add default via 10.78.1.1\n")
    box = Host(kit, h, c, tmp_path / f"root-{uuid.uuid4().hex[:6]}")
    try:
        yield box
    finally:
        ids = box.shoal("ps", "-aq", "--no-trunc", code=None).stdout.split()
        if ids:
            box.shoal("rm", "-f", *ids, code=None)
        kit.close()


def test_a_published_port_answers_from_outside_and_from_the_host_itself_until_the_container_stops(host: Host):
    host.web("web1", "8080:80")
    answers = host.kit.get(host.c, "10.78.1.1", 8080, 5)
    assert labels(answers) == {"web1": 5}
    assert clients(answers) == {"10.78.1.2"}, "the client's own address: no SNAT from outside"
    local = sh("nsenter", f"--net={host.kit.path(host.h)}", sys.executable, "-c",
               "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/', timeout=3).read().decode())")
    assert local.startswith("web1 "), "loopback reaches it too (as docker-proxy gives)"
    assert "0.0.0.0:8080->80/tcp" in host.shoal("ps").stdout
    host.shoal("stop", "-t", "1", "web1")  # its python (PID 1) ignores SIGTERM: the SIGKILL after 1 s, not 10
    assert host.kit.get(host.c, "10.78.1.1", 8080)[0].startswith("error")
    assert host.traces() == [], "nothing of the standalone networking is left once no container publishes"
    assert host.shoal("ps", "-a").stdout.count("Exited") == 1


def test_a_port_another_container_or_a_host_process_holds_is_refused_with_its_holder(host: Host):
    host.web("first", "8080:80")
    res = host.shoal("run", "-d", "--name", "second", "-p", "8080:80", "host", PY, "-c", SERVER, "x", "80", code=1)
    assert res.stderr.strip() == "Error: Bind for 0.0.0.0:8080 failed: port is already allocated (by container first)"
    host.kit.procs.append(subprocess.Popen(["nsenter", f"--net={host.kit.path(host.h)}", sys.executable, "-c", SERVER,
                                            "hostproc", "8090"], stdout=subprocess.PIPE, text=True))
    assert host.kit.procs[-1].stdout.readline().strip() == "ready"
    res = host.shoal("run", "-d", "-p", "8090:80", "host", PY, "-c", SERVER, "x", "80", code=1)
    assert "Bind for 0.0.0.0:8090 failed: the port is in use on this host" in res.stderr
    assert labels(host.kit.get(host.c, "10.78.1.1", 8080, 3)) == {"first": 3}, "the holder keeps serving"


def test_two_containers_each_get_their_own_address_and_an_rm_frees_the_port(host: Host):
    a = host.web("a", "8081:80")
    # a's veth gets a MAC lower than any other: a bridge left to the kernel took it as its own, b learned it for
    # its gateway, and once a was gone what b sent through its gateway went to a MAC nobody had any more
    host.in_h("ip", "link", "set", veth_name(a), "address", "02:00:00:00:00:01")
    b = host.web("b", "8082:80")
    host.kit.serve(host.h, "h", 8099)  # a server of the host itself, which containers reach through their gateway
    assert labels(host.kit.get(host.c, "10.78.1.1", 8081, 2)) == {"a": 2}
    assert labels(host.kit.get(host.c, "10.78.1.1", 8082, 2)) == {"b": 2}
    host.shoal("rm", "-f", "a")
    assert labels(host.kit.get(netns_name(b), "10.78.1.1", 8099)) == {"h": 1}, "b reaches out through its gateway"
    assert host.kit.get(host.c, "10.78.1.1", 8081)[0].startswith("error")
    assert labels(host.kit.get(host.c, "10.78.1.1", 8082, 2)) == {"b": 2}, "b's forward survives a's removal"
    host.web("a2", "8081:80")
    assert labels(host.kit.get(host.c, "10.78.1.1", 8081, 2)) == {"a2": 2}


def test_a_foreground_run_with_rm_gets_an_address_and_leaves_nothing(host: Host):
    res = host.shoal("run", "--rm", "-p", "8083:80", "host", "sh", "-c", "ip -4 -o addr show eth0; exit 3", code=3)
    assert "inet 10.209.0." in res.stdout
    assert host.traces() == []


@pytest.mark.parametrize("flag, message", [
    ("70000:80", "host port '70000' must be 1-65535"),
    ("80", "a host port is required"),
    ("8080:80/sctp", "protocol 'sctp' is not tcp or udp"),
    ("8080-8081:80", "the host and container ranges differ in length"),
])
def test_a_bad_publish_flag_is_one_error_and_creates_nothing(host: Host, flag: str, message: str):
    res = host.shoal("run", "-d", "-p", flag, "host", "true", code=2)
    (error,) = [line for line in res.stderr.splitlines() if line.startswith("Error")]
    assert message in error, res.stderr
    assert host.shoal("ps", "-aq").stdout == ""
