"""The deploy plan: a pure diff of the stack's services against the running ones."""

from __future__ import annotations

from shoal.proto import types_pb2 as pb
from shoal.stack.objects import ObjectPlan, ServicePlan, StackPlan
from shoal.stack.plan import dependency_order, diff_specs, flatten, format_plan, plan_deploy, spec_dict


def spec(name: str, image: str = "nginx:1", replicas: int = 1, **labels: str) -> dict:
    s = pb.ServiceSpec(name=name, replicas=replicas)
    s.container.image = image
    s.labels.update(labels)
    return spec_dict(s)


def test_flatten_keeps_scalar_lists_whole_and_indexes_lists_of_mappings():
    assert flatten({"a": {"b": 1}, "env": ["A=1"], "ports": [{"p": 1}, {"p": 2}]}) == {"a.b": 1, "env": ["A=1"], "ports[0].p": 1, "ports[1].p": 2}


def test_field_changes_name_the_path_and_both_values():
    old, new = spec("s", "nginx:1", 1), spec("s", "nginx:2", 3, team="web")
    assert [(c.path, c.old, c.new) for c in diff_specs(old, new)] == [
        ("container.image", "nginx:1", "nginx:2"),
        ("labels.team", None, "web"),
        ("replicas", "1", "3"),  # int64 renders as text in proto JSON
    ]


def test_create_update_unchanged_and_prune():
    stack = StackPlan("app", services={n: ServicePlan(n, pb.ServiceSpec()) for n in ("app_a", "app_b", "app_c")})
    desired = {"app_a": spec("app_a"), "app_b": spec("app_b", "x:2"), "app_c": spec("app_c")}
    current = {"app_b": spec("app_b", "x:1"), "app_c": spec("app_c"), "app_old": spec("app_old")}
    plan = plan_deploy(stack, desired, current, prune=True)
    assert [(c.action, c.name) for c in plan.changes] == [("create", "app_a"), ("update", "app_b"), ("unchanged", "app_c"), ("remove", "app_old")]
    assert [(f.path, f.old, f.new) for f in plan.changes[1].fields] == [("container.image", "x:1", "x:2")]
    kept = plan_deploy(stack, desired, current, prune=False)
    assert kept.of("remove") == [] and kept.kept == ["app_old"]


def test_objects_are_created_or_used_and_volumes_left_to_the_nodes():
    stack = StackPlan("app", objects=[
        ObjectPlan("network", "default", "app_default"), ObjectPlan("secret", "pw", "ext_pw", external=True),
        ObjectPlan("volume", "data", "app_data"), ObjectPlan("volume", "shared", "shared", external=True),
    ])  # fmt: skip
    plan = plan_deploy(stack, {}, {})
    assert [(c.action, c.kind, c.name) for c in plan.changes] == [
        ("create", "network", "app_default"), ("use", "volume", "shared"), ("use", "secret", "ext_pw"),
    ]  # fmt: skip


def test_format_plan_reads_like_nomad_plan():
    stack = StackPlan("app", services={"app_b": ServicePlan("b", pb.ServiceSpec())})
    plan = plan_deploy(stack, {"app_b": spec("app_b", "x:2")}, {"app_b": spec("app_b", "x:1"), "app_z": spec("app_z")})
    assert format_plan(plan).splitlines() == [
        "~ service app_b: update",
        '    container.image: "x:1" => "x:2"',
        "  service app_z: not in the stack file, kept (use --prune to remove it)",
        "services: 0 to create, 1 to update, 0 to remove, 0 unchanged",
    ]


def test_dependencies_come_first():
    deps = {"web": {"api", "cache"}, "api": {"db"}, "db": set(), "cache": set(), "lone": set(), "ext": {"not-in-stack"}}
    order = dependency_order(deps)
    assert order.index("db") < order.index("api") < order.index("web") and order.index("cache") < order.index("web")
    assert sorted(order) == sorted(deps)
    stack = StackPlan("app", services={
        "app_web": ServicePlan("web", pb.ServiceSpec(), depends_on={"app_db": "service_healthy"}),
        "app_db": ServicePlan("db", pb.ServiceSpec()),
    })  # fmt: skip
    plan = plan_deploy(stack, {"app_web": spec("app_web"), "app_db": spec("app_db")}, {})
    assert [c.name for c in plan.changes] == ["app_db", "app_web"]
