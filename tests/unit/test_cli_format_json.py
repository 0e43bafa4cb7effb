"""``--format json`` as docker prints it, through the CLI against a fake manager.

A list command (``svc ls/ps``, ``node ls/ps``, ``secret ls``, ``config ls``, ``stack ls/ps/services``) prints
one compact JSON object per line, the same object ``{{json .}}`` sees (keys sorted, as Go marshals a map),
and nothing for an empty list; an inspect command prints docker's ``NewJSONInspector`` output: the whole
array, compact, on one line.
"""

from __future__ import annotations

import json
import time

import pytest

from shoal.proto import types_pb2
from shoal.stack import NAMESPACE_LABEL
from tests.fixtures.cli_fakes import NOW_NS, FakeStub, rows, run, sample_stub


@pytest.fixture
def fake() -> FakeStub:
    f = sample_stub()
    for svc in f.services.values():
        svc.spec.labels[NAMESPACE_LABEL] = "app"
    f.tasks[0].status.err = "task: non-zero exit (3)"
    f.secrets["s1"] = types_pb2.Secret(id="s1" + "0" * 23, spec=types_pb2.SecretSpec(name="db_pw", labels={"env": "prod"}))
    f.secrets["s1"].meta.created_at_ns = time.time_ns() - 120 * 10**9  # "2 minutes ago" whenever the test runs
    f.configs["c1"] = types_pb2.Config(id="c1" + "0" * 23, spec=types_pb2.ConfigSpec(name="app.conf", data=b"x=1"))
    return f


def _lines(fake: FakeStub, *args: str) -> list[str]:
    r = run(fake, *args, "--format", "json")
    assert r.exit_code == 0, r.output
    return r.stdout.splitlines()


LISTS = [
    ("svc", "ls"),
    ("svc", "ps", "web", "agent"),
    ("node", "ls"),
    ("node", "ps", "host-one"),
    ("secret", "ls"),
    ("config", "ls"),
    ("stack", "ls"),
    ("stack", "ps", "app"),
    ("stack", "services", "app"),
]


@pytest.mark.parametrize("args", LISTS, ids=" ".join)
def test_a_list_prints_one_compact_object_per_line_as_docker_does(fake: FakeStub, args: tuple[str, ...]) -> None:
    lines = _lines(fake, *args)
    assert lines, "the fake cluster has something to list"
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict), line
        assert json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False) == line  # compact, sorted
    same = run(fake, *args, "--format", "{{json .}}").stdout.splitlines()  # docker: json is {{json .}}
    assert [json.loads(s) for s in same] == [json.loads(line) for line in lines]


def test_the_rows_carry_what_the_table_shows(fake: FakeStub) -> None:
    web_id = next(i for i, s in fake.services.items() if s.spec.name == "web")
    svc = {r["Name"]: r for r in rows(run(fake, "svc", "ls", "--format", "json").stdout)}
    assert svc["web"] == {"ID": web_id[:12], "Image": "nginx", "Mode": "replicated", "Name": "web",
                          "Ports": "*:8080->80/tcp", "Replicas": "2/2"}
    tasks = rows(run(fake, "svc", "ps", "web", "--format", "json").stdout)
    assert [t["Name"] for t in tasks] == ["web.1", "web.2"] and tasks[0]["Error"] == '"task: non-zero exit (3)"'
    full = rows(run(fake, "svc", "ps", "--no-trunc", "web", "--format", "json").stdout)
    assert full[0]["ID"] == fake.tasks[0].id and full[0]["Name"] == f"web.1.{fake.tasks[0].id}"
    (secret,) = rows(run(fake, "secret", "ls", "--format", "json").stdout)
    assert secret == {"CreatedAt": "2 minutes ago", "Driver": "", "ID": "s1" + "0" * 23, "Labels": "env=prod",
                      "Name": "db_pw", "UpdatedAt": ""}
    (config,) = rows(run(fake, "config", "ls", "--format", "json").stdout)
    assert set(config) == {"CreatedAt", "ID", "Labels", "Name", "UpdatedAt"} and config["Name"] == "app.conf"
    assert rows(run(fake, "stack", "ls", "--format", "json").stdout) == [{"Name": "app", "Services": "2"}]


def test_secret_ls_has_dockers_driver_column_and_config_ls_has_none(fake: FakeStub) -> None:
    header, line = run(fake, "secret", "ls").stdout.splitlines()
    assert header.split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]
    assert line.split()[:2] == ["s1" + "0" * 23, "db_pw"] and header.index("CREATED") == line.index("2 minutes ago")
    assert run(fake, "config", "ls").stdout.splitlines()[0].split() == ["ID", "NAME", "CREATED", "UPDATED"]


def test_an_empty_list_prints_nothing_and_quiet_still_wins(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--filter", "name=nothing", "--format", "json")
    assert r.exit_code == 0 and r.stdout == ""
    assert run(fake, "secret", "ls", "-q", "--format", "json").stdout.split() == ["s1" + "0" * 23]


@pytest.mark.parametrize("args", [("svc", "inspect", "web", "agent"), ("node", "inspect", "host-one")], ids=" ".join)
def test_inspect_json_is_the_default_array_compact_on_one_line(fake: FakeStub, args: tuple[str, ...]) -> None:
    r = run(fake, *args, "--format", "json")
    assert r.exit_code == 0, r.output
    assert r.stdout.count("\n") == 1 and r.stdout.startswith("[{") and ": " not in r.stdout.split('"Args"')[0]
    assert json.loads(r.stdout) == json.loads(run(fake, *args).stdout)  # the same objects as the indented default


def test_a_template_on_a_list_sees_the_bare_name_and_a_table_the_history_mark(fake: FakeStub) -> None:
    old = types_pb2.Task()
    old.CopyFrom(fake.tasks[0])
    old.id = "oldtask00000000000000000x"
    old.desired_state = types_pb2.SHUTDOWN
    old.meta.created_at_ns = NOW_NS - 600 * 10**9
    fake.tasks.append(old)
    assert run(fake, "svc", "ps", "web", "--format", "{{.Name}}").stdout.split("\n")[:3] == ["web.1", "web.1", "web.2"]
    table = run(fake, "svc", "ps", "web", "--format", "table {{.Name}}").stdout.splitlines()
    assert table[:4] == ["NAME", "web.1", " \\_ web.1", "web.2"]
