"""Service spec validation: each invalid spec is refused with a message naming the field."""

import pytest

from shoal import spec
from shoal.proto import types_pb2 as pb


def make(**kw) -> pb.ServiceSpec:
    s = pb.ServiceSpec(name="web")
    s.container.image = "host"
    s.container.args.extend(["sleep", "10"])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_valid_spec_passes_and_gets_defaults():
    s = make()
    spec.validate(s)
    d = spec.with_defaults(s)
    assert d.replicas == 1
    assert d.restart_policy.delay_ns == 5 * 10**9
    assert d.container.stop_grace_period_ns == 10 * 10**9
    assert d.update_config.parallelism == 1
    assert not s.HasField("replicas"), "with_defaults must not change its input"


def test_explicit_zero_replicas_is_kept():
    s = make(replicas=0)
    assert spec.with_defaults(s).replicas == 0


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda s: s.ClearField("name"), "name"),
        (lambda s: setattr(s, "name", "bad name!"), "name"),
        (lambda s: setattr(s, "replicas", -1), "replicas"),
        (lambda s: setattr(s.container, "image", "Nginx:latest"), "image"),
        (lambda s: setattr(s.container, "image", "busybox:"), "image"),
        (lambda s: s.container.ClearField("args"), "command"),
        (lambda s: s.container.env.append("NOEQUALS"), "env"),
        (lambda s: setattr(s.resources.limits, "memory_bytes", 1024), "resources.limits.memory"),
        (lambda s: s.placement.constraints.append("node.colour==red"), "placement.constraints"),
        (lambda s: s.placement.constraints.append("node.role=manager"), "placement.constraints"),
        (lambda s: s.placement.preferences.add(spread="zone"), "placement.preferences"),
        (lambda s: (setattr(s, "mode", pb.ServiceSpec.GLOBAL), setattr(s, "replicas", 2)), "replicas"),
        (lambda s: setattr(s, "max_concurrent", 2), "max_concurrent"),
        (lambda s: setattr(s, "mode", 7), "mode"),
        (lambda s: s.ports.add(target_port=0), "ports.target"),
        (lambda s: (s.ports.add(target_port=80, published_port=8080), s.ports.add(target_port=81, published_port=8080)), "ports.published"),
        (lambda s: s.container.healthcheck.test.append("WHATEVER"), "healthcheck.test"),
    ],
)
def test_invalid_specs_name_the_field(mutate, field):
    s = make()
    mutate(s)
    with pytest.raises(spec.SpecError) as exc:
        spec.validate(s)
    assert exc.value.field == field
    assert field in str(exc.value)


def test_any_well_formed_image_reference_is_accepted_nodes_decide_if_they_have_it():
    s = make()
    for ref in ("busybox", "busybox:1.36", "registry.local:5000/team/app:v1", "busybox@sha256:" + "a" * 64):
        s.container.image = ref
        spec.validate(s)
    s.container.image = "bad image"
    with pytest.raises(spec.SpecError, match="invalid reference format"):
        spec.validate(s)


@pytest.mark.parametrize(
    ("mode", "field", "allowed"),
    [
        (pb.ServiceSpec.REPLICATED, "replicas", True),
        (pb.ServiceSpec.REPLICATED_JOB, "replicas", True),
        (pb.ServiceSpec.GLOBAL, "replicas", False),
        (pb.ServiceSpec.GLOBAL_JOB, "replicas", False),
        (pb.ServiceSpec.REPLICATED, "rebalance", True),
        (pb.ServiceSpec.REPLICATED_JOB, "rebalance", False),
        (pb.ServiceSpec.REPLICATED_JOB, "max_concurrent", True),
        (pb.ServiceSpec.REPLICATED, "max_concurrent", False),
        (pb.ServiceSpec.REPLICATED_JOB, "placement.max_replicas_per_node", True),
        (pb.ServiceSpec.GLOBAL, "placement.max_replicas_per_node", False),
    ],
)
def test_mode_only_fields(mode: int, field: str, allowed: bool):
    assert spec.mode_allows(mode, field) is allowed
    if allowed:
        spec.check_mode_allows(mode, field)
    else:
        with pytest.raises(spec.SpecError) as err:
            spec.check_mode_allows(mode, field)
        assert err.value.field == field and "can only be used with" in err.value.message
        assert str(err.value) == f"invalid service spec: {field}: {err.value.message}"


def test_the_cli_and_the_manager_refuse_a_mode_field_with_one_message():
    s = make(mode=pb.ServiceSpec.GLOBAL)
    s.max_concurrent = 2
    with pytest.raises(spec.SpecError) as whole:
        spec.validate(s)
    with pytest.raises(spec.SpecError) as flag:
        spec.check_mode_allows(pb.ServiceSpec.GLOBAL, "max_concurrent")
    assert whole.value.message == flag.value.message


@pytest.mark.parametrize("ratio", [0.0, 0.5, 1.0])
def test_failure_ratio_in_range(ratio: float):
    spec.check_ratio("update_config.max_failure_ratio", ratio)


@pytest.mark.parametrize("ratio", [-0.01, 1.01, 2.0])
def test_failure_ratio_out_of_range(ratio: float):
    with pytest.raises(spec.SpecError, match="update_config.max_failure_ratio: must be between 0 and 1"):
        spec.check_ratio("update_config.max_failure_ratio", ratio)


@pytest.mark.parametrize("name", ["a", "web", "web-1", "web_1", "web.v2", "0day", "x" * 63])
def test_names_docker_accepts(name: str):
    s = make()
    s.name = name
    spec.validate(s)


@pytest.mark.parametrize("name", ["-web", "_web", ".web", "web app", "web/1", "x" * 64, "wéb"])
def test_names_docker_refuses(name: str):
    s = make()
    s.name = name
    with pytest.raises(spec.SpecError, match=r"name: .* must be 1-63 letters"):
        spec.validate(s)


def test_a_missing_name_says_which_flag_gives_one():
    s = make()
    s.name = ""
    with pytest.raises(spec.SpecError, match=r"--name"):
        spec.validate(s)


@pytest.mark.parametrize(
    "mode", [pb.ServiceSpec.REPLICATED, pb.ServiceSpec.GLOBAL, pb.ServiceSpec.REPLICATED_JOB, pb.ServiceSpec.GLOBAL_JOB]
)
def test_every_supported_mode_validates(mode: int):
    spec.validate(make(mode=mode))


def test_an_image_the_cluster_knows_is_accepted_even_if_it_is_no_reference():
    s = make()
    s.container.image = "My Image"
    with pytest.raises(spec.SpecError, match="invalid reference format"):
        spec.validate(s)
    spec.validate(s, images=frozenset({"My Image"}))


def test_the_host_image_needs_a_command_but_takes_an_entrypoint_alone():
    s = make()
    s.container.ClearField("args")
    s.container.command.extend(["/bin/sleep", "1"])
    spec.validate(s)


def test_a_missing_image_is_refused():
    s = make()
    s.container.image = ""
    with pytest.raises(spec.SpecError, match="image: a service needs an image"):
        spec.validate(s)


@pytest.mark.parametrize("env", ["A=1", "A=", "A==b", "PATH=/bin:/usr/bin", "lower=case"])
def test_env_entries_are_key_equals_value(env: str):
    s = make()
    s.container.env.append(env)
    spec.validate(s)


@pytest.mark.parametrize("env", ["=1", "A", " A=1", ""])
def test_env_without_a_key_is_refused(env: str):
    s = make()
    s.container.env.append(env)
    with pytest.raises(spec.SpecError, match="env: .* is not KEY=VALUE"):
        spec.validate(s)


@pytest.mark.parametrize(
    ("section", "attr", "value", "field", "message"),
    [
        ("limits", "nano_cpus", -1, "resources.limits.cpus", "must not be negative"),
        ("reservations", "nano_cpus", -1, "resources.reservations.cpus", "must not be negative"),
        ("limits", "memory_bytes", -1, "resources.limits.memory", "must not be negative"),
        ("reservations", "memory_bytes", 5 << 20, "resources.reservations.memory", "at least 6MiB"),
        ("limits", "pids", -1, "resources.limits.pids", "must not be negative"),
    ],
)
def test_resources_name_the_limit_or_reservation(section: str, attr: str, value: int, field: str, message: str):
    s = make()
    setattr(getattr(s.resources, section), attr, value)
    with pytest.raises(spec.SpecError) as err:
        spec.validate(s)
    assert err.value.field == field and message in err.value.message


def test_memory_of_exactly_6mib_and_unset_memory_are_fine():
    s = make()
    s.resources.limits.memory_bytes = 6 << 20
    spec.validate(s)
    s.resources.limits.memory_bytes = 0
    spec.validate(s)


def test_stop_grace_period_must_not_be_negative_but_zero_is_kept():
    s = make()
    s.container.stop_grace_period_ns = 0
    spec.validate(s)
    assert spec.with_defaults(s).container.stop_grace_period_ns == 0
    s.container.stop_grace_period_ns = -1
    with pytest.raises(spec.SpecError, match="stop_grace_period"):
        spec.validate(s)


def test_a_bad_constraint_is_reported_as_the_placement_field_with_the_parsers_words():
    s = make()
    s.placement.constraints.append("node.ip==nowhere")
    with pytest.raises(spec.SpecError) as err:
        spec.validate(s)
    assert err.value.field == "placement.constraints"
    assert "'nowhere' is not an address or CIDR" in err.value.message


@pytest.mark.parametrize("spread", ["node.labels.zone", "engine.labels.rack"])
def test_spread_preferences_on_labels_are_accepted(spread: str):
    s = make()
    s.placement.preferences.add(spread=spread)
    spec.validate(s)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: setattr(s.restart_policy, "delay_ns", -1), "restart_policy.delay"),
        (lambda s: setattr(s.restart_policy, "window_ns", -1), "restart_policy.window"),
        (lambda s: setattr(s.update_config, "delay_ns", -1), "update_config"),
        (lambda s: setattr(s.rollback_config, "monitor_ns", -1), "rollback_config"),
        (lambda s: setattr(s.rollback_config, "max_failure_ratio", 1.5), "rollback_config.max_failure_ratio"),
    ],
)
def test_restart_and_update_policies_refuse_negative_times(mutate, field: str):
    s = make()
    mutate(s)
    with pytest.raises(spec.SpecError) as err:
        spec.validate(s)
    assert err.value.field == field


@pytest.mark.parametrize("test", [["NONE"], ["CMD", "true"], ["CMD-SHELL", "curl -f localhost"]])
def test_healthcheck_kinds_docker_knows(test: list[str]):
    s = make()
    s.container.healthcheck.test.extend(test)
    spec.validate(s)


def test_ports_published_twice_on_different_protocols_are_fine():
    s = make()
    s.ports.add(target_port=53, published_port=53, protocol=pb.PortConfig.TCP)
    s.ports.add(target_port=53, published_port=53, protocol=pb.PortConfig.UDP)
    spec.validate(s)


@pytest.mark.parametrize(("target", "published", "field"), [(65536, 0, "ports.target"), (80, 65536, "ports.published")])
def test_port_numbers_above_65535_are_refused(target: int, published: int, field: str):
    s = make()
    s.ports.add(target_port=target, published_port=published)
    with pytest.raises(spec.SpecError) as err:
        spec.validate(s)
    assert err.value.field == field and "1-65535" in err.value.message


def test_defaults_leave_global_services_without_a_replica_count():
    d = spec.with_defaults(make(mode=pb.ServiceSpec.GLOBAL))
    assert not d.HasField("replicas")
    assert d.update_config.parallelism == 1 and d.rollback_config.parallelism == 1
    assert d.update_config.monitor_ns == spec.DEFAULT_MONITOR_NS


def test_defaults_keep_what_the_user_set():
    s = make(replicas=4)
    s.restart_policy.delay_ns = 1
    s.container.stop_grace_period_ns = 2
    s.update_config.parallelism = 0  # docker: 0 means all at once
    s.update_config.monitor_ns = 3
    d = spec.with_defaults(s)
    assert (d.replicas, d.restart_policy.delay_ns, d.container.stop_grace_period_ns) == (4, 1, 2)
    assert (d.update_config.parallelism, d.update_config.monitor_ns) == (0, 3)
    assert d.rollback_config.parallelism == 1, "only the fields left unset get defaults"


def test_replicas_are_capped_with_a_clear_error():
    spec.validate(make(replicas=spec.MAX_REPLICAS))
    with pytest.raises(spec.SpecError, match=r"^invalid service spec: replicas: 100000000 is more than the 10000 replicas a service may have$"):
        spec.validate(make(replicas=100_000_000))
