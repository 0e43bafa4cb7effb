"""Service spec validation: each invalid spec is refused with a message naming the field."""

import pytest

from shoal.manager import spec
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
