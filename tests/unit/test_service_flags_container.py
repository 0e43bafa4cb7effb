"""svc create/update container flags through the CLI: parsed before anything is sent, one error each."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal import spec
from shoal.cli.service_flags_container import read_env_file
from shoal.cli.service_opts import FlagError
from shoal.proto import types_pb2 as pb
from tests.fixtures.cli_fakes import FakeStub, run


def _created(*args: str) -> pb.ServiceSpec:
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", "--name", "web", *args, "busybox", "sleep", "9")
    assert r.exit_code == 0, r.output
    (req,) = fake.called("CreateService")
    spec.validate(req.spec, images=frozenset({"busybox"}))
    return req.spec


def test_create_flags_fill_the_container_spec(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("# comment\n\nA=from-file\nB=kept\n")
    c = _created(
        "--mount", "type=volume,source=data,target=/data,volume-nocopy", "--mount", "type=tmpfs,target=/run/x,tmpfs-size=1m",
        "--read-only", "--env-file", str(env_file), "--env", "A=from-flag", "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN",
        "--stop-signal", "SIGUSR1", "--ulimit", "nofile=100:200", "--sysctl", "net.core.somaxconn=512", "--group", "audio",
        "--dns", "10.0.0.2", "--dns-search", "example.org", "--dns-option", "ndots:2", "--hostname", "{{.Service.Name}}-{{.Task.Slot}}",
        "--user", "1000:1000", "--workdir", "/srv", "--entrypoint", "/bin/sh -c", "--init",
    ).container  # fmt: skip
    assert [(m.type, m.source, m.target, m.volume_nocopy) for m in c.mounts] == [
        (pb.Mount.VOLUME, "data", "/data", True), (pb.Mount.TMPFS, "", "/run/x", False)]
    assert c.mounts[1].tmpfs_size_bytes == 1 << 20
    assert c.read_only and c.init
    assert list(c.env) == ["A=from-file", "B=kept", "A=from-flag"], "--env comes after --env-file, so it wins"
    assert (list(c.cap_add), list(c.cap_drop), c.stop_signal) == (["NET_ADMIN"], ["CHOWN"], "SIGUSR1")
    assert [(u.name, u.soft, u.hard) for u in c.ulimits] == [("nofile", 100, 200)]
    assert dict(c.sysctls) == {"net.core.somaxconn": "512"} and list(c.groups) == ["audio"]
    assert (list(c.dns_config.nameservers), list(c.dns_config.search), list(c.dns_config.options)) == (
        ["10.0.0.2"], ["example.org"], ["ndots:2"])
    assert (c.hostname, c.user, c.dir, list(c.command)) == ("{{.Service.Name}}-{{.Task.Slot}}", "1000:1000", "/srv", ["/bin/sh", "-c"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mount", "type=nfs,source=x,target=/x"], "invalid mount type 'nfs'"),
        (["--mount", "type=volume,source=x,target=relative"], "invalid mount target 'relative': must be an absolute path"),
        (["--mount", "type=volume,source=../x,target=/x"], "invalid volume name"),
        (["--sysctl", "kernel.core_pattern=|/tmp/x"], "is not allowed"),
        (["--ulimit", "nofile=2:1"], "above the hard limit"),
        (["--cap-add", "FLY"], "unknown capability"),
        (["--stop-signal", "SIGNOPE"], "invalid signal"),
        (["--dns", "resolver"], "expected an IP address"),
        (["--env-file", "/nonexistent/env"], "No such file or directory"),
    ],
)
def test_bad_input_is_one_error_and_nothing_is_sent(args: list[str], message: str) -> None:
    fake = FakeStub()
    r = run(fake, "svc", "create", "-d", "--name", "web", *args, "busybox")
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert lines[-1].startswith("Error: invalid argument") and message in lines[-1], r.output
    assert fake.calls == [] and r.connects == []


def test_env_file_rules(tmp_path: Path) -> None:
    f = tmp_path / "e"
    f.write_text("  X=1 2 \nFROM_SHELL\nMISSING\n#A=1\n")
    assert read_env_file(str(f), {"FROM_SHELL": "v"}) == ["X=1 2 ", "FROM_SHELL=v"]
    f.write_text("BAD KEY=1\n")
    with pytest.raises(FlagError, match="line 1"):
        read_env_file(str(f), {})


@pytest.fixture
def services() -> FakeStub:
    f = FakeStub()
    c = pb.ContainerSpec(
        image="busybox", cap_add=["NET_ADMIN"], groups=["audio"], sysctls={"net.core.somaxconn": "1"},
        mounts=[pb.Mount(source="data", target="/data"), pb.Mount(type=pb.Mount.TMPFS, target="/t")],
        ulimits=[pb.Ulimit(name="nofile", soft=1, hard=1), pb.Ulimit(name="nproc", soft=5, hard=5)],
        dns_config=pb.DNSConfig(nameservers=["10.0.0.2"]),
    )
    f.add_service(pb.ServiceSpec(name="web", replicas=1, container=c))
    return f


def _updated(services: FakeStub, *args: str) -> pb.ContainerSpec:
    r = run(services, "svc", "update", "-d", *args, "web")
    assert r.exit_code == 0, r.output
    sent = services.called("UpdateService")[-1].spec
    spec.validate(sent, images=frozenset({"busybox"}))
    return sent.container


def test_update_flags_remove_then_add(services: FakeStub) -> None:
    c = _updated(
        services, "--mount-rm", "/t", "--mount-add", "type=bind,source=/srv,target=/data,readonly", "--read-only",
        "--cap-drop", "NET_ADMIN", "--cap-add", "SYS_TIME", "--ulimit-rm", "nproc", "--ulimit-add", "nofile=7:8",
        "--sysctl-rm", "net.core.somaxconn", "--sysctl-add", "net.ipv4.tcp_syncookies=1", "--group-rm", "audio",
        "--group-add", "video", "--dns-rm", "10.0.0.2", "--dns-add", "10.0.0.3", "--dns-search-add", "a.org",
        "--stop-signal", "SIGINT", "--user", "nobody", "--workdir", "/w", "--hostname", "h", "--entrypoint", "tini --",
    )  # fmt: skip
    assert [(m.type, m.source, m.target, m.readonly) for m in c.mounts] == [(pb.Mount.BIND, "/srv", "/data", True)]
    assert c.read_only and list(c.cap_add) == ["SYS_TIME"] and list(c.cap_drop) == ["NET_ADMIN"]
    assert [(u.name, u.soft, u.hard) for u in c.ulimits] == [("nofile", 7, 8)]
    assert dict(c.sysctls) == {"net.ipv4.tcp_syncookies": "1"} and list(c.groups) == ["video"]
    assert list(c.dns_config.nameservers) == ["10.0.0.3"] and list(c.dns_config.search) == ["a.org"]
    assert (c.stop_signal, c.user, c.dir, c.hostname, list(c.command)) == ("SIGINT", "nobody", "/w", "h", ["tini", "--"])


def test_update_boolean_flags_turn_on_and_off_and_stay_when_not_given(services: FakeStub) -> None:
    c = _updated(services, "--read-only", "--init")
    assert (c.read_only, c.init) == (True, True)
    assert _updated(services, "--user", "x").read_only is True
    c = _updated(services, "--no-read-only", "--no-init")
    assert (c.read_only, c.init) == (False, False)


def test_update_with_a_bad_mount_sends_nothing(services: FakeStub) -> None:
    r = run(services, "svc", "update", "-d", "--mount-add", "type=tmpfs,target=tmp", "web")
    assert r.exit_code == 2 and "must be an absolute path" in r.output
    assert not services.called("UpdateService")


@pytest.mark.parametrize(("args", "shown"), [((), None), (("--init",), True), (("--init=false",), False), (("--init=true",), True)])
def test_init_given_even_false_shows_in_inspect_as_dockers(args: tuple[str, ...], shown: bool | None) -> None:
    from shoal.cli.docker_views import container_doc

    s = _created(*args)
    assert s.container.HasField("init") == (shown is not None) and s.container.init == bool(shown)
    doc = container_doc(s.container)
    assert doc.get("Init", "absent") == ("absent" if shown is None else shown)


def test_update_init_false_is_kept_as_given(services: FakeStub) -> None:
    c = _updated(services, "--init=false")
    assert c.HasField("init") and not c.init
    assert not _updated(services, "--user", "x").init, "not given: stays as it was"
