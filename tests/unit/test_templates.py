"""docker's service templates, expanded on the node (shoal.templates)."""

from __future__ import annotations

import pytest

from shoal import templates
from shoal.templates import Context, TemplateError

CTX = Context(service_name="web", service_id="sid", service_labels={"tier": "front"}, task_id="tid",
              task_name="web.2.tid", task_slot="2", node_id="nid", node_hostname="node-1")


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("{{.Service.Name}}", "web"),
        ("{{ .Service.ID }}", "sid"),
        ("{{.Task.ID}}-{{.Task.Name}}-{{.Task.Slot}}", "tid-web.2.tid-2"),
        ("{{.Node.ID}}@{{.Node.Hostname}}", "nid@node-1"),
        ("{{.Node.Platform.OS}}/{{.Node.Platform.Architecture}}", "linux/x86_64"),
        ('{{index .Service.Labels "tier"}}', "front"),
        ('{{index .Service.Labels "none"}}', ""),
        ("no template", "no template"),
        ("HOST={{.Node.Hostname}}", "HOST=node-1"),
    ],
)
def test_fields_expand(text: str, expanded: str) -> None:
    assert templates.expand(text, CTX) == expanded


@pytest.mark.parametrize("text", ["{{.Task.Slots}}", "{{.Service}}", "{{printf \"%s\" 1}}", "{{.Task.Slot", "a}}b"])
def test_an_unknown_action_or_unbalanced_braces_is_an_error(text: str) -> None:
    with pytest.raises(TemplateError):
        templates.expand(text, CTX)


def test_a_value_holding_braces_is_not_expanded_again() -> None:
    ctx = Context(service_labels={"x": "{{.Task.ID}}"}, task_id="t")
    assert templates.expand('{{index .Service.Labels "x"}}', ctx) == "{{.Task.ID}}"


def test_check_uses_plausible_sample_facts() -> None:
    assert templates.check("data-{{.Task.Slot}}") == "data-1"
    assert templates.has_template("x{{.Task.Slot}}") and not templates.has_template("x")
