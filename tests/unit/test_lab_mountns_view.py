"""What each lab host sees of the lab's files (shoal.lab.mountns, pure parts): a worker host only its own data dir;
a manager of an etcd cluster also its etcd member pair, the managers' client pair and the etcd CA certificate,
never the etcd CA key; which machine mounts a new host detaches."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from shoal.lab import mountns, state
from shoal.lab.mountns import Bind


def lab3(root: Path) -> state.Lab:
    return state.plan("lab", 3, 2, ipaddress.ip_network("172.30.4.0/24"), root)


def test_a_worker_host_gets_back_only_its_own_data_dir(tmp_path: Path):
    lab = lab3(tmp_path)
    covers, binds = mountns.view(lab, lab.node("worker1"), home="/root")
    assert covers == [str(tmp_path / "lab"), "/var/lib/shoal", "/etc/shoal", "/root/.shoal"]
    assert binds == [Bind(str(tmp_path / "lab" / "worker1"), True)]


def test_a_manager_of_an_etcd_cluster_gets_its_etcd_files_read_only_and_never_the_ca_key(tmp_path: Path):
    lab = lab3(tmp_path)
    _, binds = mountns.view(lab, lab.node("manager2"), home="/root")
    tls = tmp_path / "lab" / "etcd-tls"
    assert binds == [
        Bind(str(tmp_path / "lab" / "manager2"), True),
        *(Bind(str(tls / f), False) for f in ("ca.crt", "manager2.crt", "manager2.key", "managers.crt", "managers.key")),
    ]
    assert not any(b.path.endswith("ca.key") or "manager1" in b.path for b in binds)


def test_a_lone_manager_keeps_its_embedded_etcd_in_its_data_dir(tmp_path: Path):
    lab = state.plan("one", 1, 1, ipaddress.ip_network("172.30.4.0/24"), tmp_path)
    _, binds = mountns.view(lab, lab.node("manager1"), home="/root")
    assert binds == [Bind(str(tmp_path / "one" / "manager1"), True)]


def test_the_default_lab_root_is_covered_once_with_the_machines_state(tmp_path: Path):
    lab = state.plan("lab", 1, 1, ipaddress.ip_network("172.30.4.0/24"), Path("/var/lib/shoal/labs"))
    covers, binds = mountns.view(lab, lab.node("worker1"), home="/root")
    assert covers == ["/var/lib/shoal", "/etc/shoal", "/root/.shoal"]  # the labs (all of them) are under the first
    assert binds == [Bind("/var/lib/shoal/labs/lab/worker1", True)]


def test_outermost_keeps_paths_no_other_contains():
    assert mountns.outermost(["/a/b", "/a", "/ab", "/a/", "/c/d/", "/c/d/e"]) == ["/a", "/ab", "/c/d"]


MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
42 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw
43 42 0:4 net:[4026532179] /run/netns/shoal-x-manager1 rw shared:2 - nsfs nsfs rw
50 27 0:4 net:[4026532999] /tmp/other\\040test/agent/net/t1/netns rw - nsfs nsfs rw
51 27 254:0 /tmp/labs/lab/.mntns /tmp/labs/lab/.mntns rw - ext4 /dev/vda rw
52 51 0:4 mnt:[4026533000] /tmp/labs/lab/.mntns/manager1 rw - nsfs nsfs rw
53 27 0:60 / /tmp/labs/lab rw - tmpfs tmpfs rw
60 27 0:61 / /tmp/elsewhere rw - overlay overlay rw
"""


def test_a_new_host_detaches_namespace_files_and_mounts_under_its_covers_deepest_first():
    assert mountns.mounts(MOUNTINFO)[3] == ("/tmp/other test/agent/net/t1/netns", "nsfs")
    assert mountns.strays(MOUNTINFO, ["/tmp/labs/lab"]) == [
        "/tmp/other test/agent/net/t1/netns", "/tmp/labs/lab/.mntns/manager1", "/tmp/labs/lab/.mntns", "/run/netns/shoal-x-manager1",
    ]  # fmt: skip
