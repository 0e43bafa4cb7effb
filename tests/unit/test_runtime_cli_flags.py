"""Pure parts of the node-local CLI: ``shoal run`` flags -> ContainerConfig, names, status words."""

from __future__ import annotations

import re

import click
import pytest

from shoal.cli import containers_common as cc
from shoal.cli.run import build_config, parse_bytes, parse_cpus, parse_env
from shoal.runtime import ContainerInfo


def test_run_flags_map_onto_the_config() -> None:
    o = {
        "entrypoint": "/bin/sh -c", "env": ("A=1", "HOME"), "workdir": "/w", "user": "app", "hostname": "h",
        "memory": "64m", "cpus": "0.5", "pids_limit": 20, "cpu_shares": 512, "cap_add": ("NET_ADMIN",),
        "cap_drop": ("CHOWN",), "init": True, "mount": ("type=tmpfs,dst=/t",), "volume": ("/src:/dst:ro",),
        "stop_timeout": 3, "label": ("k=v",),
    }  # fmt: skip
    cfg = build_config("busybox", ("echo hi",), o, "id1", "web", {"HOME": "/root"})
    assert cfg.entrypoint == ["/bin/sh", "-c"] and cfg.args == ["echo hi"]
    assert cfg.env == ["A=1", "HOME=/root"] and cfg.workdir == "/w" and cfg.user == "app"
    assert (cfg.memory_bytes, cfg.nano_cpus, cfg.pids_limit, cfg.cpu_shares) == (
        64 << 20,
        500_000_000,
        20,
        512,
    )
    assert cfg.cap_add == ["NET_ADMIN"] and cfg.cap_drop == ["CHOWN"] and cfg.init and cfg.stop_grace_s == 3
    assert [m["type"] for m in cfg.mounts] == ["tmpfs", "bind"] and cfg.mounts[1]["readonly"]
    assert cfg.labels == {cc.NAME_LABEL: "web", "k": "v"}
    plain = build_config("busybox", (), {}, "id2", "n", {})
    assert plain.entrypoint is None and plain.args == [] and plain.workdir == "" and plain.stop_grace_s == 10
    assert build_config("busybox", (), {"entrypoint": ""}, "i", "n", {}).entrypoint == [""]


def test_flag_values() -> None:
    assert parse_bytes("1g") == 1 << 30 and parse_cpus("1.5") == 1_500_000_000
    assert parse_env(("A=1", "MISSING"), {}) == ["A=1"]
    for bad in ("12Q", "-1"):
        with pytest.raises(click.BadParameter):
            parse_bytes(bad)
    for bad, why in (("lots", "expected a number such as 0.5 or 2"), ("nan", "expected a number such as 0.5 or 2"),
                     ("-1", "must not be negative"), ("1e-10", "too precise (at most 9 decimals)")):
        with pytest.raises(click.BadParameter, match=f"^invalid CPU count '{bad}': {re.escape(why)}$"):
            parse_cpus(bad)  # shoal.units' words, as svc create --limit-cpu and a stack file's cpus say it


def _info(cid: str, name: str, **kw: object) -> ContainerInfo:
    base = {"image": "busybox", "status": "running", "pid": 1, "exit_code": None, "oom_killed": False,
            "created_at": 0.0, "started_at": 100.0, "finished_at": None, "log_path": "", "cgroup": ""}  # fmt: skip
    base.update(kw)
    return ContainerInfo(id=cid, labels={cc.NAME_LABEL: name}, **base)  # type: ignore[arg-type]


def test_lookup_by_name_id_and_prefix() -> None:
    cs = [_info("abc123" + "0" * 58, "web"), _info("abd456" + "0" * 58, "db")]
    assert cc.find(cs, "web") is cs[0] and cc.find(cs, "abd4") is cs[1] and cc.find(cs, cs[0].id) is cs[0]
    with pytest.raises(Exception, match="multiple containers"):
        cc.find(cs, "ab")
    with pytest.raises(Exception, match="No such container: zz"):
        cc.find(cs, "zz")


def test_status_and_sizes() -> None:
    assert cc.status_text(_info("a", "a"), now=105.0) == "Up 5 seconds"
    done = _info("a", "a", status="exited", exit_code=137, finished_at=100.0)
    assert cc.status_text(done, now=220.0) == "Exited (137) 2 minutes ago"
    assert cc.status_text(_info("a", "a", status="created"), now=1.0) == "Created"
    assert cc.size_text(1_982_442) == "1.98MB" and cc.size_text(512) == "512B"
    assert cc.bytes_text(64 << 20) == "64MiB" and cc.bytes_text(1536) == "1.5KiB"


def test_run_takes_the_same_container_options_as_services() -> None:
    from shoal.runtime import ConfigError

    o = {"read_only": True, "tmpfs": ("/run",), "ulimit": ("nofile=10:20",), "sysctl": ("net.core.somaxconn=64",),
         "group_add": ("audio",), "stop_signal": "SIGUSR1"}  # fmt: skip
    cfg = build_config("busybox", (), o, "id1", "web", {})
    assert cfg.read_only and cfg.mounts[0]["type"] == "tmpfs" and cfg.mounts[0]["target"] == "/run"
    assert cfg.ulimits == [{"name": "nofile", "soft": 10, "hard": 20}] and cfg.sysctls == {"net.core.somaxconn": "64"}
    assert (cfg.group_add, cfg.stop_signal) == (["audio"], "SIGUSR1")
    for bad in ({"sysctl": ("kernel.core_pattern=|/x",)}, {"ulimit": ("nofile=2:1",)}, {"stop_signal": "SIGNOPE"}):
        with pytest.raises(ConfigError):
            build_config("busybox", (), bad, "id1", "web", {})


def test_run_refuses_a_bad_option_before_any_work() -> None:
    from click.testing import CliRunner

    from shoal.cli.main import main

    r = CliRunner().invoke(main, ["run", "--root", "/nonexistent/root", "--sysctl", "kernel.core_pattern=|/x", "busybox"])
    assert r.exit_code == 2 and "not allowed" in r.output
