"""`svc ls/ps/inspect/scale/rm` and `node ls/inspect` against a fake manager: output shapes and errors."""

from __future__ import annotations

import json

import grpc
import pytest

from shoal.proto import types_pb2
from tests.fixtures.cli_fakes import NOW_NS, FakeRpcError, FakeStub, rows, run, sample_stub


@pytest.fixture
def fake() -> FakeStub:
    return sample_stub()


def test_svc_ls_table(fake: FakeStub) -> None:
    r = run(fake, "service", "ls")
    assert r.exit_code == 0, r.output
    header, agent, web = r.stdout.splitlines()
    assert header.split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert agent.split() == [list(fake.services)[1][:12], "agent", "global", "0/0", "busybox"]
    assert web.split() == [list(fake.services)[0][:12], "web", "replicated", "2/2", "nginx", "*:8080->80/tcp"]


def test_svc_ls_quiet_json_and_filters(fake: FakeStub) -> None:
    assert run(fake, "svc", "ls", "-q").stdout.split() == sorted(fake.services, key=lambda i: fake.services[i].spec.name)
    data = rows(run(fake, "svc", "list", "--format", "json").stdout)
    assert [d["Name"] for d in data] == ["agent", "web"] and data[1]["ID"] == list(fake.services)[0][:12]
    assert [d["Name"] for d in rows(run(fake, "svc", "ls", "--filter", "name=we", "--format", "json").stdout)] == ["web"]
    assert [d["Name"] for d in rows(run(fake, "svc", "ls", "-f", "mode=global", "--format", "json").stdout)] == ["agent"]
    bad = run(fake, "svc", "ls", "--filter", "colour=red")
    assert bad.exit_code == 2 and "invalid filter 'colour'" in bad.output


def test_svc_ps(fake: FakeStub) -> None:
    old = types_pb2.Task()
    old.CopyFrom(fake.tasks[0])
    old.id = "oldtask00000000000000000x"
    old.desired_state = types_pb2.SHUTDOWN
    old.status.state = types_pb2.FAILED
    old.status.err = "task: non-zero exit (3)"
    old.meta.created_at_ns = NOW_NS - 60 * 10**9
    fake.tasks.append(old)
    r = run(fake, "svc", "ps", "web")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split(None, 5)[:5] == ["ID", "NAME", "IMAGE", "NODE", "DESIRED"]
    assert "web.1" in lines[1] and "host-one" in lines[1] and "Running" in lines[1]
    assert " \\_ web.1" in lines[2] and '"task: non-zero exit (3)"' in lines[2] and "Shutdown" in lines[2]
    assert "web.2" in lines[3]
    running = run(fake, "svc", "ps", "--filter", "desired-state=running", "-q", "web").stdout.split()
    assert old.id not in running and len(running) == 2
    data = rows(run(fake, "svc", "ps", "--format", "json", "web").stdout)
    assert [d["Name"] for d in data] == ["web.1", "web.1", "web.2"]  # docker marks history only in a table
    assert data[1]["Error"] == '"task: non-zero exit (3)"' and data[1]["ID"] == old.id[:12]


def test_svc_ps_filtered_shows_the_first_task_of_a_slot_it_keeps_by_its_name(fake: FakeStub) -> None:
    """A failed update leaves a newer, failed task above the running one; docker filters before it indents
    a slot's older tasks, so with desired-state=running the running task is ``web.1``, not `` \\_ web.1``."""
    new = types_pb2.Task()
    new.CopyFrom(fake.tasks[0])
    new.id = "newtask00000000000000000x"
    new.desired_state = types_pb2.SHUTDOWN
    new.status.state = types_pb2.FAILED
    new.meta.created_at_ns = fake.tasks[0].meta.created_at_ns + 10**9
    fake.tasks.append(new)
    assert [ln.split()[1] for ln in run(fake, "svc", "ps", "web").stdout.splitlines()[1:3]] == ["web.1", "\\_"]
    shown = run(fake, "svc", "ps", "--filter", "desired-state=running", "web").stdout.splitlines()[1:]
    assert [ln.split()[1] for ln in shown] == ["web.1", "web.2"], shown


def test_svc_ps_unknown_service(fake: FakeStub) -> None:
    r = run(fake, "svc", "ps", "nope")
    assert r.exit_code == 1 and r.output.strip() == "Error: no such service: nope"
    r = run(fake, "svc", "ps", "web", "nope")
    assert r.exit_code == 1 and "web.1" in r.stdout and "no such service: nope" in r.stderr


def test_svc_inspect(fake: FakeStub) -> None:
    r = run(fake, "svc", "inspect", "web")
    data = json.loads(r.stdout)
    assert r.exit_code == 0 and data[0]["Spec"]["Name"] == "web" and data[0]["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    assert data[0]["Spec"]["EndpointSpec"]["Ports"][0]["PublishedPort"] == 8080
    r = run(fake, "svc", "inspect", "web", "nope")
    assert r.exit_code == 1 and len(json.loads(r.stdout)) == 1 and "no such service: nope" in r.stderr
    r = run(fake, "svc", "inspect", "--pretty", "web")
    assert "Name:           web" in r.stdout and "Service Mode:   Replicated" in r.stdout


def test_svc_scale_uses_the_version_read(fake: FakeStub) -> None:
    r = run(fake, "svc", "scale", "-d", "web=5")
    assert r.exit_code == 0 and r.stdout.strip() == "web scaled to 5"
    (req,) = fake.called("UpdateService")
    assert req.version == 1 and req.spec.replicas == 5 and req.spec.name == "web"


def test_svc_scale_retries_a_version_conflict(fake: FakeStub) -> None:
    conflict = FakeRpcError(
        grpc.StatusCode.FAILED_PRECONDITION, "update out of sequence: the service changed since it was read"
    )
    fake.fail["UpdateService"] = [conflict, conflict]
    r = run(fake, "svc", "scale", "-d", "web=3")
    assert r.exit_code == 0, r.output
    assert len(fake.called("UpdateService")) == 3 and len(fake.called("GetService")) == 3
    fake.fail["UpdateService"] = [conflict] * 4
    r = run(fake, "svc", "scale", "-d", "web=4")
    assert r.exit_code == 1 and "web: update out of sequence" in r.output


def test_svc_scale_refuses_global_and_bad_specifiers(fake: FakeStub) -> None:
    r = run(fake, "svc", "scale", "-d", "agent=2", "web=3")
    assert r.exit_code == 1
    assert "agent: scale can only be used with replicated or replicated-job mode" in r.stderr
    assert "web scaled to 3" in r.stdout
    r = run(None, "svc", "scale", "web")
    assert r.exit_code == 2 and "invalid scale specifier 'web'" in r.output
    r = run(None, "svc", "scale", "web=lots")
    assert r.exit_code == 2


def test_svc_rm_continues_after_an_unknown_service(fake: FakeStub) -> None:
    r = run(fake, "svc", "rm", "nope", "web", "agent")
    assert r.exit_code == 1
    assert r.stdout.splitlines() == ["web", "agent"]
    assert r.stderr.strip() == "Error: no such service: nope"
    assert fake.services == {}
    assert run(fake, "svc", "remove").exit_code == 2


def test_node_ls_and_inspect(fake: FakeStub) -> None:
    r = run(fake, "node", "ls")
    header, row = r.stdout.splitlines()
    assert header == "ID        HOSTNAME   STATUS    AVAILABILITY   MANAGER STATUS   ENGINE VERSION"
    assert row.split() == ["node1", "host-one", "Ready", "Active", "Leader"]
    assert run(fake, "node", "ls", "-q").stdout.split() == ["node1"]
    assert rows(run(fake, "node", "ls", "--format", "json").stdout)[0]["Hostname"] == "host-one"
    data = json.loads(run(fake, "node", "inspect", "host-one").stdout)
    assert data[0]["ID"] == "node1" and data[0]["ManagerStatus"]["Leader"] is True
    r = run(fake, "node", "inspect", "ghost")
    assert r.exit_code == 1 and "no such node: ghost" in r.stderr


@pytest.mark.parametrize(
    "code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.PERMISSION_DENIED]
)
def test_server_errors_are_one_line(fake: FakeStub, code: grpc.StatusCode) -> None:
    details = {grpc.StatusCode.UNAVAILABLE: "failed to connect to all addresses"}.get(code, "not allowed")
    fake.fail["ListServices"] = [FakeRpcError(code, details)]
    r = run(fake, "-H", "10.0.0.9:4242", "svc", "ls")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    if code == grpc.StatusCode.UNAVAILABLE:
        assert r.output.strip() == (
            "Error: cannot connect to the shoal manager at 10.0.0.9:4242: is `shoal manager` running? "
            "(set --host or SHOAL_HOST)"
        )
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        assert "did not answer" in r.output
    else:
        assert r.output.strip() == "Error: not allowed"


def test_connection_failure_aborts_multi_item_commands(fake: FakeStub) -> None:
    fake.fail["RemoveService"] = [FakeRpcError(grpc.StatusCode.UNAVAILABLE, "")] * 2
    r = run(fake, "svc", "rm", "web", "agent")
    assert r.exit_code == 1 and r.output.count("cannot connect") == 1 and len(fake.called("RemoveService")) == 1


def test_host_from_environment(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", env={"SHOAL_HOST": "/tmp/x.sock"})
    assert r.connects == ["/tmp/x.sock"]
    assert run(fake, "svc", "ls").connects == ["unix:///run/shoal/manager.sock"]


def test_svc_alias_and_help() -> None:
    r = run(None, "svc", "--help")
    assert r.exit_code == 0 and "create" in r.stdout and "scale" in r.stdout
    assert run(None, "svc", "bogus").exit_code == 2


def test_svc_scale_rereads_after_a_concurrent_change(fake: FakeStub) -> None:
    web = next(s for s in fake.services.values() if s.spec.name == "web")
    real_get = fake.GetService

    def get_then_bump(req):  # someone else updates the service between our read and our write, once
        resp = real_get(req)
        if len(fake.called("GetService")) == 1:
            web.meta.version += 1
        return resp

    fake.GetService = get_then_bump  # type: ignore[method-assign]
    r = run(fake, "svc", "scale", "-d", "web=7")
    assert r.exit_code == 0, r.output
    first, second = fake.called("UpdateService")
    assert first.version == 1 and second.version == 2 and web.spec.replicas == 7


def test_node_ls_marks_the_node_of_the_manager_it_talks_to_as_docker_does(fake: FakeStub) -> None:
    """docker's ``ID *`` and ``Self`` field: the node whose manager answered (``node inspect self``)."""
    assert run(fake, "node", "ls").stdout.splitlines()[1].split()[:2] == ["node1", "host-one"], "a manager that cannot say: no mark"
    fake.nodes[0].description.hostname = "self"  # the fake answers GetNode by id or hostname
    line = run(fake, "node", "ls").stdout.splitlines()[1]
    assert line.split()[:3] == ["node1", "*", "self"], line
    assert rows(run(fake, "node", "ls", "--format", "json").stdout)[0]["Self"] is True
    assert run(fake, "node", "ls", "--format", "{{.ID}} {{.Self}}").stdout.split() == ["node1", "true"]
    assert run(fake, "node", "ls", "-q").stdout.split() == ["node1"]
