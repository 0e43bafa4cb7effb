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
