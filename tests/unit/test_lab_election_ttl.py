"""The lab managers' election lease: 1 s on the lab's etcd cluster, the managers' own 2 s on a lone
manager's embedded etcd, and ``SHOAL_LAB_ELECTION_TTL_S`` (set by the cgroup-v2 VM, whose software
emulation is many times slower) lengthening both, never shortening them; a bad value is refused by
``lab up`` before it makes anything."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from shoal.lab import lifecycle, procs, state
from shoal.lab.state import Lab, LabError


def make_lab(tmp_path: Path, managers: int) -> Lab:
    return state.plan("t", managers, 1, ipaddress.ip_network("172.30.9.0/24"), tmp_path, False)


def ttl_arg(argv: list[str]) -> str | None:
    return argv[argv.index("--election-ttl") + 1] if "--election-ttl" in argv else None


def test_without_the_variable_a_cluster_lab_has_1s_leases_and_a_lone_manager_its_default(tmp_path, monkeypatch):
    monkeypatch.delenv(procs.ELECTION_TTL_ENV, raising=False)
    cluster = make_lab(tmp_path / "c", managers=3)
    assert [ttl_arg(lifecycle.manager_argv(cluster, m, first=m is cluster.managers[0])) for m in cluster.managers] == ["1"] * 3
    lone = make_lab(tmp_path / "l", managers=1)
    assert ttl_arg(lifecycle.manager_argv(lone, lone.managers[0], first=True)) is None, "the manager's own 2 s"


def test_the_variable_lengthens_the_lease_of_every_lab_manager(tmp_path, monkeypatch):
    monkeypatch.setenv(procs.ELECTION_TTL_ENV, "14")
    cluster = make_lab(tmp_path / "c", managers=3)
    assert ttl_arg(lifecycle.manager_argv(cluster, cluster.managers[1], first=False)) == "14"
    lone = make_lab(tmp_path / "l", managers=1)
    assert ttl_arg(lifecycle.manager_argv(lone, lone.managers[0], first=True)) == "14"


@pytest.mark.parametrize("bad", ["1", "0", "-3", "1.5", "ten", "²"])
def test_a_value_that_is_not_whole_seconds_of_at_least_the_default_is_refused(monkeypatch, bad):
    monkeypatch.setenv(procs.ELECTION_TTL_ENV, bad)
    with pytest.raises(LabError, match=rf"SHOAL_LAB_ELECTION_TTL_S='{bad}': whole seconds, at least 2"):
        procs.lab_election_ttl(etcd_cluster=True)


def test_lab_up_refuses_a_bad_value_before_making_anything(tmp_path, monkeypatch):
    monkeypatch.setattr(lifecycle, "require_root", lambda: None)  # the check under test comes next
    monkeypatch.setenv("SHOAL_LAB_DIR", str(tmp_path / "labs"))
    monkeypatch.setenv(procs.ELECTION_TTL_ENV, "0.5")
    with pytest.raises(LabError, match="SHOAL_LAB_ELECTION_TTL_S='0.5'"):
        lifecycle.up("ttl", 1, 1, None, False)
    assert not (tmp_path / "labs").exists(), "nothing written"
