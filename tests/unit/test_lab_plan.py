"""The lab's pure planning: names, addresses, interface names, subnets, state round trip, tokens."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from shoal.lab import lifecycle, state
from shoal.lab.state import LabError, Proc

NET = ipaddress.ip_network


def test_plan_names_addresses_and_links(tmp_path: Path):
    lab = state.plan("lab", 3, 2, NET("172.30.4.0/24"), tmp_path)
    assert [(n.name, n.role, n.addr) for n in lab.nodes] == [
        ("manager1", "manager", "172.30.4.2"), ("manager2", "manager", "172.30.4.3"), ("manager3", "manager", "172.30.4.4"),
        ("worker1", "worker", "172.30.4.5"), ("worker2", "worker", "172.30.4.6"),
    ]  # fmt: skip
    assert lab.bridge_addr == "172.30.4.1" and lab.etcd_cluster
    assert all(len(x) <= 15 for x in [lab.bridge, *(n.veth for n in lab.nodes)]), "Linux interface names are at most 15 chars"
    assert len({lab.bridge, *(n.veth for n in lab.nodes)}) == 6
    assert lab.nodes[0].netns == "shoal-lab-manager1" and lab.nodes[0].socket == str(tmp_path / "lab" / "manager1" / "manager.sock")
    assert lab.nodes[3].mntns == str(tmp_path / "lab" / ".mntns" / "worker1")
    assert lab.workers[0].socket == ""
    assert lab.etcd_endpoints() == "https://172.30.4.2:2379,https://172.30.4.3:2379,https://172.30.4.4:2379"
    assert lab.initial_cluster().startswith("manager1=https://172.30.4.2:2380,manager2=")


def test_single_manager_uses_the_embedded_etcd(tmp_path: Path):
    assert not state.plan("a", 1, 0, NET("10.9.0.0/29"), tmp_path).etcd_cluster


def test_two_labs_get_different_interface_names(tmp_path: Path):
    a, b = (state.plan(n, 1, 1, NET("172.30.0.0/24"), tmp_path) for n in ("a", "b"))
    assert a.bridge != b.bridge and a.nodes[1].veth != b.nodes[1].veth
    assert a.nodes[0].netns != b.nodes[0].netns


@pytest.mark.parametrize("managers", [0, 2, 4, 7])
def test_manager_count_must_be_odd_cluster_size(tmp_path: Path, managers: int):
    with pytest.raises(LabError, match="--managers must be 1, 3 or 5"):
        state.plan("lab", managers, 1, NET("172.30.0.0/24"), tmp_path)


@pytest.mark.parametrize("name", ["", "Lab", "-x", "a/b", "a b", "x" * 33])
def test_bad_names_are_refused(name: str):
    with pytest.raises(LabError, match="invalid lab name"):
        state.check_name(name)


def test_default_subnet_skips_everything_taken():
    taken = [NET("192.0.2.0/24"), NET("172.30.0.0/24"), NET("172.30.1.7/32")]
    assert state.choose_subnet(taken, 4) == NET("172.30.2.0/24")
    assert state.choose_subnet([NET("172.16.0.0/12")] * 0, 4) == NET("172.30.0.0/24")


def test_default_subnet_grows_for_large_labs():
    net = state.choose_subnet([], 300)
    assert net.prefixlen == 23 and net.num_addresses - 2 >= 301


def test_no_free_default_subnet_is_a_clear_error():
    with pytest.raises(LabError, match="pass --subnet"):
        state.choose_subnet([NET("172.30.0.0/16")], 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1/24", "has host bits set"),
        ("8.8.8.0/24", "private IPv4"),
        ("fd00::/64", "private IPv4"),
        ("127.0.0.0/24", "private IPv4"),
        ("nonsense", "invalid --subnet"),
        ("10.1.0.0/30", "too small"),
    ],
)
def test_bad_subnets_are_refused(text: str, message: str):
    with pytest.raises(LabError, match=message):
        state.parse_subnet(text, 4)


def test_overlap_is_found():
    assert state.overlapping(NET("10.1.0.0/24"), [NET("10.0.0.0/8"), NET("192.168.0.0/16")]) == [NET("10.0.0.0/8")]


def test_state_survives_a_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path))
    lab = state.plan("rt", 1, 1, NET("172.30.0.0/24"), tmp_path)
    lab.nodes[0].daemon = Proc(123, 456)
    lab.nodes[1].partitioned = True
    Path(lab.dir).mkdir()
    lab.save()
    again = state.load("rt")
    assert again == lab
    assert [x.name for x in state.all_labs()] == ["rt"]
    with pytest.raises(LabError, match="no lab named 'other'"):
        state.load("other")
    with pytest.raises(LabError, match="has no node 'worker9'"):
        again.node("worker9")


def test_tokens_are_read_from_the_manager_banner():
    out = (
        "Manager abc is ready; the CLI socket is /x.sock.\nTo add a worker to this cluster, run:\n\n"
        "    shoal worker --join 172.30.0.2:4242 --token SHOAL-1-abc-def --data-dir ./data/worker\n\n"
        "To add a manager, use the token SHOAL-1-abc-ghi\n"
    )
    assert lifecycle.WORKER_TOKEN_RE.search(out).group(1) == "SHOAL-1-abc-def"
    assert lifecycle.MANAGER_TOKEN_RE.search(out).group(1) == "SHOAL-1-abc-ghi"
