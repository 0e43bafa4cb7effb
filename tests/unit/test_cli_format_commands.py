"""``--format`` on the list commands, through the CLI against a fake manager."""

from __future__ import annotations

import pytest

from tests.fixtures.cli_fakes import FakeStub, run, sample_stub


@pytest.fixture
def fake() -> FakeStub:
    return sample_stub()


def test_svc_ls_template_prints_one_line_per_service(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--format", "{{.Name}} {{.Mode}} {{.Replicas}}")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["agent global 0/0", "web replicated 2/2"]


def test_svc_ls_id_is_short_as_in_the_table(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--format", "{{.ID}}")
    assert sorted(r.stdout.split()) == sorted(i[:12] for i in fake.services)


def test_svc_ls_table_template(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--format", "table {{.Name}}\\t{{.Image}}")
    assert r.stdout.splitlines() == ["NAME      IMAGE", "agent     busybox", "web       nginx"]


def test_svc_ps_template_uses_docker_field_names(fake: FakeStub) -> None:
    r = run(fake, "svc", "ps", "--format", "{{.Name}} {{.Node}} {{.DesiredState}}", "web")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["web.1 host-one Running", "web.2 host-one Running"]
    full = run(fake, "svc", "ps", "--no-trunc", "--format", "{{.ID}}", "web").stdout.split()
    web = next(s.id for s in fake.services.values() if s.spec.name == "web")
    assert sorted(full) == sorted(t.id for t in fake.tasks if t.service_id == web) and len(full[0]) == 25


def test_node_ls_template(fake: FakeStub) -> None:
    r = run(fake, "node", "ls", "--format", "{{.Hostname}}:{{.ManagerStatus}}")
    assert r.stdout.splitlines() == ["host-one:Leader"]


def test_bad_template_is_one_usage_error_before_any_call(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--format", "{{.Name")
    assert r.exit_code == 2 and "unclosed action" in r.output and not fake.calls
    r = run(fake, "svc", "ls", "--format", "{{nosuch .Name}}")
    assert r.exit_code == 2 and 'function "nosuch" not defined' in r.output and not fake.calls


def test_template_naming_an_unknown_field_is_an_error_and_prints_nothing(fake: FakeStub) -> None:
    r = run(fake, "svc", "ls", "--format", "{{.Nmae}}")
    assert r.exit_code == 2 and r.stdout == ""
    assert 'no field "Nmae"' in r.stderr and "Name" in r.stderr


def test_inspect_format_prints_one_line_per_object(fake: FakeStub) -> None:
    r = run(fake, "svc", "inspect", "--format", "{{.ID}}", "web", "agent")
    assert r.exit_code == 0, r.output
    by_name = {s.spec.name: s.id for s in fake.services.values()}
    assert r.stdout.splitlines() == [by_name["web"], by_name["agent"]]
    r = run(fake, "node", "inspect", "-f", "{{.ID}}", "node1")
    assert r.stdout == "node1\n"


def test_inspect_with_a_bad_template_fails_before_asking(fake: FakeStub) -> None:
    r = run(fake, "svc", "inspect", "--format", "{{if}}", "web")
    assert r.exit_code == 2 and "missing value for if" in r.output and not fake.calls


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("svc", "ls", "--filter", "mode=sometimes"), "invalid value for filter 'mode': 'sometimes'"),
        (("svc", "ps", "--filter", "desired-state=dancing", "web"), "invalid value for filter 'desired-state': 'dancing'"),
        (("svc", "ls", "--filter", "colour=red"), "invalid filter 'colour'"),
        (("node", "ls", "--filter", "membership=maybe"), "invalid membership filter 'maybe'"),
    ],
)
def test_bad_filters_are_one_usage_error_before_any_call(fake: FakeStub, args: tuple[str, ...], message: str) -> None:
    r = run(fake, *args)
    assert r.exit_code == 2 and message in r.output and r.stdout == "" and not fake.calls


def test_filters_that_select(fake: FakeStub) -> None:
    assert run(fake, "svc", "ls", "--filter", "mode=replicated", "--format", "{{.Name}}").stdout == "web\n"
    assert run(fake, "svc", "ps", "--filter", "desired-state=shutdown", "-q", "web").stdout == ""
    assert run(fake, "node", "ls", "--filter", "name=host", "--format", "{{.Hostname}}").stdout == "host-one\n"


@pytest.mark.parametrize("kind", ["svc", "node"])
def test_inspect_template_naming_a_field_no_object_has_is_an_error_as_dockers(fake: FakeStub, kind: str) -> None:
    name = "web" if kind == "svc" else "node1"
    r = run(fake, kind, "inspect", "--format", "{{.ID}} {{.Spec.Nope}}", name)
    assert r.exit_code == 2 and r.stdout == "", r.output
    assert 'template: at <.Spec.Nope>: map has no entry for key "Nope"' in r.stderr


def test_inspect_template_field_left_empty_or_a_users_key_prints_no_value(fake: FakeStub) -> None:
    """Empty fields are left out of inspect's JSON (docker's omitempty): docker's typed pass prints them; a
    missing label is ``<no value>`` in docker too."""
    r = run(fake, "svc", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.User}}|{{.Spec.Labels.nope}}|{{.UpdateStatus}}", "web")
    assert r.exit_code == 0 and r.stdout == "<no value>|<no value>|<no value>\n", r.output
