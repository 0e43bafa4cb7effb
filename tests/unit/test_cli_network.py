"""`shoal network create|ls|inspect|rm` and the network flags of `svc create/update/inspect`, against the fake stub."""

from __future__ import annotations

import json

import pytest

from shoal.cli.service_opts import FlagError, parse_network
from shoal.cli.service_update import apply_update
from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import FakeRpcError, FakeStub, run

P = types_pb2.PortConfig


@pytest.fixture
def fake() -> FakeStub:
    return FakeStub()


def test_network_create_sends_the_spec_and_prints_the_id(fake):
    r = run(
        fake,
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.99.0.0/24",
        "--attachable",
        "-l",
        "team=a",
        "web",
    )
    assert r.exit_code == 0, r.output
    (req,) = fake.called("CreateNetwork")
    assert (req.spec.name, req.spec.driver, req.spec.subnet, req.spec.attachable) == (
        "web",
        "overlay",
        "10.99.0.0/24",
        True,
    )
    assert dict(req.spec.labels) == {"team": "a"}
    assert r.output.strip() == next(iter(fake.networks))


def test_network_ls_has_dockers_columns(fake):
    run(fake, "network", "create", "web")
    run(fake, "network", "create", "back")
    out = run(fake, "network", "ls").output.splitlines()
    assert out[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [line.split()[1:] for line in out[1:]] == [
        ["back", "overlay", "swarm"],
        ["web", "overlay", "swarm"],
    ]
    by_name = sorted(fake.networks, key=lambda i: fake.networks[i].spec.name)
    assert run(fake, "network", "ls", "-q").output.split() == [i[:12] for i in by_name], "short, as docker's"
    assert run(fake, "network", "ls", "-q", "--no-trunc").output.split() == by_name


def test_network_inspect_prints_dockers_shape_and_the_services_on_it(fake):
    run(fake, "network", "create", "--subnet", "10.99.0.0/24", "web")
    run(fake, "svc", "create", "-d", "--name", "app", "--network", "web", "busybox")
    (got,) = json.loads(run(fake, "network", "inspect", "web").output)
    assert got["Name"] == "web" and got["Driver"] == "overlay" and got["Scope"] == "swarm"
    assert got["IPAM"]["Config"][0]["Subnet"] == "10.99.0.0/24"
    assert got["Services"] == ["app"]


def test_network_rm_goes_on_after_one_fails_and_exits_1(fake):
    run(fake, "network", "create", "web")
    r = run(fake, "network", "rm", "nope", "web")
    assert r.exit_code == 1
    assert "web" in r.output and "network nope not found" in r.output
    assert fake.networks == {}


def test_network_rm_in_use_shows_the_managers_message(fake):
    run(fake, "network", "create", "web")
    fake.fail["RemoveNetwork"] = [
        FakeRpcError(
            __import__("grpc").StatusCode.FAILED_PRECONDITION, "network web is in use by service app"
        )
    ]
    r = run(fake, "network", "rm", "web")
    assert r.exit_code == 1 and "network web is in use by service app" in r.output


def test_svc_create_network_endpoint_mode_and_publish_forms(fake):
    r = run(
        fake,
        "svc",
        "create",
        "-d",
        "--name",
        "app",
        "--network",
        "web",
        "--network",
        "name=back,alias=db,alias=db2",
        "--endpoint-mode",
        "dnsrr",
        "-p",
        "8080:80",
        "--publish",
        "published=53,target=53,protocol=udp,mode=host",
        "busybox",
    )
    assert r.exit_code == 0, r.output
    spec = fake.called("CreateService")[0].spec
    assert [(a.target, list(a.aliases)) for a in spec.networks] == [("web", []), ("back", ["db", "db2"])]
    assert spec.endpoint_mode == types_pb2.DNSRR
    assert [(p.published_port, p.target_port, p.protocol, p.publish_mode) for p in spec.ports] == [
        (8080, 80, P.TCP, P.INGRESS),
        (53, 53, P.UDP, P.HOST),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "a network name is needed"),
        ("alias=x", 'missing mandatory field "name"'),
        ("name=web,color=red", "invalid field key 'color' (name or alias)"),
        ("name=web,alias", "invalid field 'alias': must be a key=value pair"),
    ],
)
def test_bad_network_flags_name_the_problem(text, reason):
    with pytest.raises(FlagError) as exc:
        parse_network(text)
    assert reason in str(exc.value)


def test_bad_endpoint_mode_is_refused_before_sending(fake):
    r = run(fake, "svc", "create", "--endpoint-mode", "round", "busybox")
    assert r.exit_code == 2 and fake.called("CreateService") == []


def current() -> types_pb2.ServiceSpec:
    s = types_pb2.ServiceSpec(name="app")
    s.networks.add(target="id-web")
    s.ports.add(target_port=80, published_port=8080)
    s.ports.add(target_port=53, published_port=53, protocol=P.UDP)
    return s


def test_update_network_add_and_rm_use_network_ids():
    ids = {"web": "id-web", "id-web": "id-web", "back": "id-back", "id-back": "id-back"}
    spec = apply_update(
        current(), {"network_rm": ("web",), "network_add": ("back", "name=back,alias=x"), "network_ids": ids}
    )
    assert [a.target for a in spec.networks] == ["id-back"]
    spec = apply_update(current(), {"network_add": ("web",), "network_ids": ids})
    assert [a.target for a in spec.networks] == ["id-web"]  # already there: not twice


def test_update_publish_add_and_rm():
    spec = apply_update(current(), {"publish_rm": ("8080",)})
    assert [(p.published_port, p.target_port) for p in spec.ports] == [(53, 53)]
    spec = apply_update(
        current(), {"publish_rm": ("published=53,target=53,protocol=udp",), "publish_add": ("9090:90",)}
    )
    assert [(p.published_port, p.target_port) for p in spec.ports] == [(8080, 80), (9090, 90)]
    spec = apply_update(current(), {"publish_add": ("8080:81",)})  # same published port: replaced
    assert [(p.published_port, p.target_port) for p in spec.ports] == [(53, 53), (8080, 81)]


def test_svc_update_resolves_network_names_to_ids(fake):
    web = run(fake, "network", "create", "web").output.strip()
    run(fake, "svc", "create", "-d", "--name", "app", "busybox")
    r = run(fake, "svc", "update", "-d", "--network-add", "web", "app")
    assert r.exit_code == 0, r.output
    assert [a.target for a in fake.called("UpdateService")[0].spec.networks] == [web]


def test_svc_inspect_shows_vips_and_ports_as_docker_does(fake):
    svc = fake.add_service(current())
    svc.endpoint.mode = types_pb2.VIP
    svc.endpoint.ports.add(target_port=80, published_port=8080)
    svc.endpoint.virtual_ips.add(network_id="id-web", network="web", addr="10.210.1.194/24")
    (got,) = json.loads(run(fake, "svc", "inspect", "app").output)
    assert got["Endpoint"]["VirtualIPs"] == [{"NetworkID": "id-web", "Addr": "10.210.1.194/24"}]
    assert got["Endpoint"]["Ports"] == [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    ]
    assert got["Endpoint"]["Spec"]["Mode"] == "vip"
    pretty = run(fake, "svc", "inspect", "--pretty", "app").output
    assert "Endpoint Mode:  vip" in pretty and "VirtualIP:     10.210.1.194/24 (web)" in pretty


def test_svc_ls_shows_the_ports_as_allocated(fake):
    s = types_pb2.ServiceSpec(name="app")
    s.ports.add(target_port=80)  # published 0: the manager picks one
    svc = fake.add_service(s)
    svc.endpoint.ports.add(target_port=80, published_port=30000)
    assert "*:30000->80/tcp" in run(fake, "svc", "ls").output


def test_network_inspect_lists_standalone_containers_as_docker_does():
    from shoal.cli.network_views import network_dict
    from shoal.proto import types_pb2

    net = types_pb2.Network(id="n1", spec=types_pb2.NetworkSpec(name="apps", attachable=True), subnet="10.99.0.0/24")
    att = types_pb2.ContainerAttachment(id="att1", node_id="node9", network_id="n1", container_id="c" * 64,
                                        container_name="probe", address="10.99.0.7/24")
    got = network_dict(net, (), [att])
    assert got["Attachable"] is True
    assert got["Containers"] == {"c" * 64: {"Name": "probe", "EndpointID": "att1", "IPv4Address": "10.99.0.7/24",
                                            "Node": "node9"}}
    assert network_dict(net)["Containers"] == {}


def test_network_ls_filters_and_formats_as_dockers(fake):
    run(fake, "network", "create", "-l", "team=a", "web")
    run(fake, "network", "create", "back")
    names = lambda *a: run(fake, "network", "ls", *a, "--format", "{{.Name}}").output.split()  # noqa: E731
    assert names("--filter", "name=we") == ["web"] and names("--filter", "label=team=a") == ["web"]
    assert names("--filter", "label=team") == ["web"] and names("--filter", "label=team=b") == []
    assert sorted(names("--filter", "driver=overlay")) == ["back", "web"] and names("--filter", "type=builtin") == []
    web = next(i for i, n in fake.networks.items() if n.spec.name == "web")
    assert names("--filter", f"id={web}") == ["web"]
    out = run(fake, "network", "ls", "--filter", "name=web", "--format", "{{.ID}} {{.Driver}} {{.Scope}} {{.Labels}}").output
    assert out == f"{web[:12]} overlay swarm team=a\n"
    rows = [json.loads(line) for line in run(fake, "network", "ls", "--format", "json").output.splitlines()]
    assert sorted(r["Name"] for r in rows) == ["back", "web"] and {"ID", "Driver", "Scope", "CreatedAt"} <= set(rows[0])
    bad = run(fake, "network", "ls", "--filter", "colour=red")
    assert bad.exit_code == 2 and "invalid filter 'colour'" in bad.output
    assert run(fake, "network", "ls", "--filter", "type=odd").exit_code == 2


def test_network_inspect_format_as_dockers(fake):
    run(fake, "network", "create", "--subnet", "10.99.0.0/24", "web")
    out = run(fake, "network", "inspect", "-f", "{{.Name}} {{(index .IPAM.Config 0).Subnet}} {{.Internal}}", "web")
    assert out.exit_code == 0 and out.output == "web 10.99.0.0/24 false\n", out.output
    bad = run(fake, "network", "inspect", "-f", "{{.Nope}}", "web")
    assert bad.exit_code == 2 and 'map has no entry for key "Nope"' in bad.output
