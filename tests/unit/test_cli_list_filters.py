"""The `svc ls` and `svc ps` filters on plain data, as docker reads them: a key given twice is an OR, keys
together are an AND; names and ids match by prefix; a label filter with or without a value; modes by
their CLI words; tasks by desired state, node name or id prefix, task id and name.
"""

from __future__ import annotations

import pytest

from shoal.cli.output import SERVICE_FILTER_VALUES, TASK_FILTER_VALUES, parse_filters
from shoal.cli.service import service_matches, task_matches
from shoal.proto import types_pb2 as pb

S = pb.ServiceSpec


def svc(sid: str, name: str, mode: int = S.REPLICATED, **labels: str) -> pb.Service:
    return pb.Service(id=sid, spec=S(name=name, mode=mode, labels=labels))  # type: ignore[arg-type]


SERVICES = [
    svc("aaa111", "web", tier="front", team="core"),
    svc("aab222", "api", tier="back"),
    svc("bbb333", "agent", S.GLOBAL),
    svc("ccc444", "backup", S.REPLICATED_JOB, team="ops"),
    svc("ddd555", "setup", S.GLOBAL_JOB),
]


def names(*filters: str) -> list[str]:
    f = parse_filters(filters, ("name", "id", "mode", "label"), SERVICE_FILTER_VALUES)
    return [s.spec.name for s in SERVICES if service_matches(f, s)]


def test_no_filter_keeps_everything():
    assert names() == ["web", "api", "agent", "backup", "setup"]


def test_names_and_ids_match_by_prefix_and_a_repeated_key_is_an_or():
    assert names("name=a") == ["api", "agent"]
    assert names("name=we", "name=se") == ["web", "setup"]
    assert names("id=aa") == ["web", "api"]
    assert names("id=aab", "id=ddd") == ["api", "setup"]


def test_different_keys_must_all_hold():
    assert names("name=a", "id=aab") == ["api"]
    assert names("name=web", "mode=global") == []


@pytest.mark.parametrize(("mode", "expected"), [("replicated", ["web", "api"]), ("global", ["agent"]),
                                                 ("replicated-job", ["backup"]), ("global-job", ["setup"])])
def test_modes_by_their_cli_words(mode, expected):
    assert names(f"mode={mode}") == expected


def test_a_label_filter_with_a_value_or_only_a_key():
    assert names("label=tier") == ["web", "api"]
    assert names("label=tier=back") == ["api"]
    assert names("label=team", "label=tier=front") == ["web"], "several labels: all of them"
    assert names("label=nope") == []


def test_an_unknown_key_or_mode_is_a_usage_error_naming_it():
    import click

    with pytest.raises(click.UsageError, match="colour"):
        names("colour=red")
    with pytest.raises(click.UsageError, match="sideways"):
        names("mode=sideways")


# -- svc ps ------------------------------------------------------------------------------------------------


def task(tid: str, node: str, name: str, desired: str) -> tuple[dict[str, object], pb.Task]:
    t = pb.Task(id=tid, node_id=node)
    return {"Name": name, "Node": {"n1aaaa": "host-one", "n2bbbb": "host-two"}.get(node, node), "DesiredState": desired}, t


TASKS = [task("t1x", "n1aaaa", "web.1", "Running"), task("t2y", "n2bbbb", "web.2", "Running"),
         task("t3z", "n2bbbb", "web.2", "Shutdown"), task("t4w", "", "web.3", "Running")]


def picked(*filters: str) -> list[str]:
    f = parse_filters(filters, ("desired-state", "node", "id", "name"), TASK_FILTER_VALUES)
    return [t.id for rec, t in TASKS if task_matches(f, rec, t)]


def test_tasks_by_desired_state_in_any_case():
    assert picked("desired-state=running") == ["t1x", "t2y", "t4w"]
    assert picked("desired-state=shutdown") == ["t3z"]


def test_tasks_by_node_name_id_or_id_prefix():
    assert picked("node=host-two") == ["t2y", "t3z"]
    assert picked("node=n1aaaa") == ["t1x"]
    assert picked("node=n1") == ["t1x"]
    assert picked("node=host-one", "node=host-two") == ["t1x", "t2y", "t3z"]


def test_tasks_by_id_prefix_and_name_prefix_together():
    assert picked("id=t2", "id=t3") == ["t2y", "t3z"]
    assert picked("name=web.2", "desired-state=running") == ["t2y"]
    assert picked("name=web.") == ["t1x", "t2y", "t3z", "t4w"]
