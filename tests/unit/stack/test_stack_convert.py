"""A loaded stack becomes ServiceSpecs named and labelled as docker names them, plus plan objects."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.proto import types_pb2 as pb
from shoal.spec import validate
from shoal.stack.convert import convert_stack
from shoal.stack.errors import StackError
from shoal.stack.loader import load_stack

CORPUS = Path(__file__).parent / "corpus" / "good"
ENV = {"FROM_SHELL": "yes", "API_KEY": "k"}


@pytest.fixture(scope="module")
def everything():
    return convert_stack(load_stack([CORPUS / "everything.yml"], environ=ENV).compose, "demo")


def test_services_are_named_and_labelled_as_docker_does(everything):
    assert sorted(everything.services) == ["demo_api", "demo_cache-svc", "demo_janitor", "demo_migrate"]
    api = everything.services["demo_api"].spec
    assert api.labels["com.docker.stack.namespace"] == "demo"
    assert api.labels["com.docker.stack.image"] == api.container.image
    assert api.labels["com.example.team"] == "platform"  # deploy.labels are service labels
    assert api.container.labels == {"com.example.description": "the API", "com.docker.stack.namespace": "demo"}


def test_entrypoint_is_the_command_and_command_the_args(everything):
    c = everything.services["demo_api"].spec.container
    assert list(c.command) == ["/sbin/tini", "--"] and list(c.args) == ["serve", "--port", "8080"]
    assert list(c.env) == ["FROM_SHELL=yes", "LOG_LEVEL=debug", "MODE=production"]
    assert (c.dir, c.user, c.hostname, c.init) == ("/app", "1000:1000", "api-{{.Task.Slot}}", True)
    assert c.stop_grace_period_ns == 90 * 10**9


def test_every_converted_spec_passes_the_managers_validation(everything):
    for plan in everything.services.values():
        validate(plan.spec)


def test_deploy_settings_map_field_by_field(everything):
    s = everything.services["demo_api"].spec
    assert s.mode == pb.ServiceSpec.REPLICATED and s.replicas == 2
    assert (s.resources.limits.nano_cpus, s.resources.limits.memory_bytes, s.resources.limits.pids) == (1_500_000_000, 1 << 30, 200)
    assert (s.resources.reservations.nano_cpus, s.resources.reservations.memory_bytes) == (250_000_000, 64 << 20)
    assert list(s.placement.constraints) == ["node.role == worker", "node.labels.zone != east"]
    assert s.placement.preferences[0].spread == "node.labels.zone" and s.placement.max_replicas_per_node == 2
    assert s.restart_policy.condition == pb.RestartPolicy.ANY and s.restart_policy.delay_ns == 5 * 10**9
    assert (s.restart_policy.max_attempts, s.restart_policy.window_ns) == (10, 120 * 10**9)
    u = s.update_config
    assert (u.parallelism, u.delay_ns, u.monitor_ns, u.order) == (1, 90 * 10**9, 500 * 10**6, pb.UpdateConfig.START_FIRST)
    r = s.rollback_config
    assert r.HasField("parallelism") and r.parallelism == 0 and r.failure_action == pb.UpdateConfig.CONTINUE
    hc = s.container.healthcheck
    assert list(hc.test) == ["CMD-SHELL", "curl -fs http://localhost:8080/ready || exit 1"]
    assert (hc.interval_ns, hc.timeout_ns, hc.retries, hc.start_period_ns, hc.start_interval_ns) == (30 * 10**9, 5 * 10**9, 3, 60 * 10**9, 2 * 10**9)


def test_ports_keep_protocol_and_mode(everything):
    ports = [(p.published_port, p.target_port, p.protocol, p.publish_mode) for p in everything.services["demo_api"].spec.ports]
    assert ports[0] == (0, 8080, pb.PortConfig.TCP, pb.PortConfig.INGRESS)
    assert (5353, 53, pb.PortConfig.UDP, pb.PortConfig.INGRESS) in ports
    assert ports[-1] == (7000, 7000, pb.PortConfig.TCP, pb.PortConfig.HOST)


def test_modes_and_disabled_health_checks(everything):
    cache = everything.services["demo_cache-svc"]
    assert cache.spec.mode == pb.ServiceSpec.GLOBAL and not cache.spec.HasField("replicas")
    assert list(cache.spec.container.healthcheck.test) == ["NONE"]
    assert cache.extras.endpoint_mode == "dnsrr"
    assert everything.services["demo_migrate"].spec.mode == pb.ServiceSpec.REPLICATED_JOB
    assert everything.services["demo_migrate"].spec.restart_policy.condition == pb.RestartPolicy.NONE
    assert everything.services["demo_janitor"].spec.mode == pb.ServiceSpec.GLOBAL_JOB


def test_objects_are_named_NAME_key_unless_named_or_external(everything):
    names = {(o.kind, o.key): (o.name, o.external) for o in everything.objects}
    assert names[("network", "front")] == ("demo_front", False)
    assert names[("network", "default")] == ("host-net", True)
    assert names[("volume", "data")] == ("demo_data", False) and names[("volume", "cache")] == ("cache", True)
    assert names[("secret", "db_password")] == ("demo_db_password", False)
    assert names[("secret", "old_style")] == ("legacy_secret", True)
    assert names[("config", "motd")] == ("motd-v1", False)
    created = [o for o in everything.objects if not o.external]
    assert all(("com.docker.stack.namespace", "demo") in o.labels for o in created)


def test_service_side_of_networks_mounts_secrets_and_configs(everything):
    api = everything.services["demo_api"]
    # the service's key is an alias on each of its networks, after those written, as docker adds it
    assert [(n.network, n.aliases) for n in api.networks] == [("demo_front", ("api-server", "backend-api", "api")), ("demo_back", ("api",))]
    assert [(m.type, m.source, m.target) for m in api.mounts][:3] == [("volume", "demo_data", "/data"), ("bind", str(CORPUS / "conf"), "/etc/api"), ("volume", "", "/var/log")]
    assert api.mounts[3].tmpfs_size == 64 << 20 and api.mounts[3].tmpfs_mode == 0o1777
    assert api.mounts[4].source == "cache" and api.mounts[4].volume_nocopy
    assert api.mounts[-1].type == "tmpfs" and api.mounts[-1].target == "/run"
    assert [(s.name, s.target, s.mode) for s in api.secrets] == [("demo_db_password", "/run/secrets/db_password", 0o444), ("demo_api_key", "/run/secrets/api.key", 0o400)]
    assert [(c.name, c.target) for c in api.configs] == [("demo_api_conf", "/api_conf"), ("motd-v1", "/etc/motd")]
    assert api.depends_on == {"demo_cache-svc": "service_started", "demo_migrate": "service_completed_successfully"}
    assert [(d.service, d.condition) for d in api.spec.depends_on] == [
        ("demo_cache-svc", pb.ServiceDependency.STARTED), ("demo_migrate", pb.ServiceDependency.COMPLETED_SUCCESSFULLY),
    ]  # fmt: skip
    assert api.extras.cap_add == ("NET_ADMIN",) and api.extras.read_only and api.extras.stop_signal == "SIGTERM"
    assert api.extras.log_driver == "json-file" and ("max-size", "10m") in api.extras.log_options


def test_a_service_without_networks_joins_the_stacks_default_network(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n")
    plan = convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, "app")
    assert [n.network for n in plan.services["app_web"].networks] == ["app_default"]
    assert [(o.kind, o.name, o.driver) for o in plan.objects] == [("network", "app_default", "overlay")]


def test_services_reach_each_other_by_the_names_the_file_gives_them(tmp_path):
    """Regression (found by tests/e2e/test_stack_lab.py: 'wget: bad address db'): a stack's web reaches its
    ``db`` by that name, not only as ``app_db``: docker adds the service's key as an alias on each network."""
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n  db:\n    image: pg\n    networks: {back: {aliases: [store, db]}, front: }\n"
                                    "networks:\n  back:\n  front:\n")  # fmt: skip
    plan = convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, "app")
    assert [(n.target, list(n.aliases)) for n in plan.services["app_web"].spec.networks] == [("app_default", ["web"])]
    assert [(n.target, list(n.aliases)) for n in plan.services["app_db"].spec.networks] == [("app_back", ["store", "db"]), ("app_front", ["db"])]


@pytest.mark.parametrize("name", ["", "-x", "a b", "x/y"])
def test_invalid_stack_names_are_refused(tmp_path, name):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n")
    with pytest.raises(StackError, match="invalid stack name"):
        convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, name)


def test_a_service_name_over_63_characters_is_refused(tmp_path):
    (tmp_path / "s.yml").write_text(f"services:\n  {'w' * 60}:\n    image: nginx\n")
    with pytest.raises(StackError, match="must be 1-63"):
        convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, "app")


def test_network_attachments_and_endpoint_mode_are_in_the_spec(everything):
    api = everything.services["demo_api"].spec
    assert [(n.target, list(n.aliases)) for n in api.networks] == [("demo_front", ["api-server", "backend-api", "api"]), ("demo_back", ["api"])]
    assert api.endpoint_mode == pb.VIP
    cache = everything.services["demo_cache-svc"].spec
    assert [n.target for n in cache.networks] == ["demo_back"] and cache.endpoint_mode == pb.DNSRR
    janitor = everything.services["demo_janitor"].spec  # no networks: key -> the stack's default (external here)
    assert [n.target for n in janitor.networks] == ["host-net"]


def test_mounts_and_container_options_reach_the_service_spec(everything):
    c = everything.services["demo_api"].spec.container
    assert [(m.type, m.source, m.target, m.readonly) for m in c.mounts][:3] == [
        (pb.Mount.VOLUME, "demo_data", "/data", False), (pb.Mount.BIND, str(CORPUS / "conf"), "/etc/api", True),
        (pb.Mount.VOLUME, "", "/var/log", False)]
    assert c.mounts[3].type == pb.Mount.TMPFS and (c.mounts[3].tmpfs_size_bytes, c.mounts[3].tmpfs_mode) == (64 << 20, 0o1777)
    assert c.mounts[4].volume_nocopy and c.mounts[-1].target == "/run"
    assert (c.mounts[4].volume_subpath, c.mounts[5].target, c.mounts[5].bind_propagation) == ("api", "/shared", "rslave")
    assert c.read_only and list(c.cap_add) == ["NET_ADMIN"] and list(c.cap_drop) == ["ALL"] and c.stop_signal == "SIGTERM"
    assert [(u.name, u.soft, u.hard) for u in c.ulimits] == [("nofile", 20000, 40000), ("nproc", 65535, 65535)]
    assert dict(c.sysctls) == {"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"}
    assert list(c.groups) == ["audio", "1234"]
    assert (list(c.dns_config.nameservers), list(c.dns_config.search), list(c.dns_config.options)) == (
        ["10.0.0.53", "10.0.0.54"], ["example.internal"], ["ndots:2", "timeout:1"])


@pytest.mark.parametrize(
    ("key", "value", "path", "message"),
    [
        ("sysctls", "{kernel.core_pattern: '|/tmp/x'}", "services.web.sysctls", "not allowed"),
        ("cap_add", "[FLY]", "services.web.cap_add", "unknown capability"),
        ("stop_signal", "SIGNOPE", "services.web.stop_signal", "invalid signal"),
        ("group_add", "['a:b']", "services.web.group_add", "invalid group"),
        ("dns", "[resolver]", "services.web.dns", "expected an IP address"),
        ("working_dir", "app", "services.web.working_dir", "needs to be an absolute path"),
    ],
)
def test_a_container_option_the_manager_refuses_names_its_compose_key(tmp_path, key, value, path, message):
    (tmp_path / "s.yml").write_text(f"services:\n  web:\n    image: nginx\n    {key}: {value}\n")
    with pytest.raises(StackError) as err:
        convert_stack(load_stack([tmp_path / "s.yml"], environ={}).compose, "app")
    assert path in str(err.value) and message in str(err.value), str(err.value)
