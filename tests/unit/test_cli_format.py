"""``--format`` templates: the Go text/template subset docker users type, run on the CLI's JSON records."""

from __future__ import annotations

import json

import pytest

from shoal.cli.format import Format, TemplateError, header_name, is_template, tabwrite
from shoal.cli.template_exec import go_str

RECS = [
    {"ID": "abc", "Name": "web", "DesiredState": "Running", "Labels": {"b": "x", "a": "1"}, "Ports": [80, 443]},
    {"ID": "defghijklmnop", "Name": "api", "DesiredState": "Shutdown", "Labels": {}, "Ports": []},
]


def lines(fmt: str, recs: list[dict] = RECS) -> list[str]:
    return Format.parse(fmt).render_list(recs).splitlines()


@pytest.mark.parametrize(
    ("fmt", "want"),
    [
        ("{{.Name}}", ["web", "api"]),
        ("{{.ID}}: {{.Name}}", ["abc: web", "defghijklmnop: api"]),
        ("{{.Labels}}", ["map[a:1 b:x]", "map[]"]),
        ("{{.Ports}}", ["[80 443]", "[]"]),
        ("{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}", ["a=1;b=x;", ""]),
        ("{{range .Ports}}<{{.}}>{{else}}none{{end}}", ["<80><443>", "none"]),
        ("{{if .Labels}}has{{else}}none{{end}}", ["has", "none"]),
        ('{{if eq .Name "web"}}W{{else if eq .Name "api"}}A{{end}}', ["W", "A"]),
        ("{{with .Labels}}{{.a}}{{else}}-{{end}}", ["1", "-"]),
        ('{{index .Labels "a"}}', ["1", "<no value>"]),
        ("{{len .Ports}} {{upper .Name}} {{lower .DesiredState}} {{title .Name}}", ["2 WEB running Web", "0 API shutdown Api"]),
        ('{{.Name | upper | printf "%-5s|"}}', ["WEB  |", "API  |"]),
        ('{{join (split "a,b" ",") "+"}} {{truncate .ID 5}}', ["a+b abc", "a+b defgh"]),
        ("{{- .Name -}}   {{/* a comment */}} x", ["web x", "api x"]),
        ('{{and .Labels "y"}} {{or .Ports "none"}} {{not .Ports}}', ["y [80 443] false", "map[] none true"]),
        ('{{$n := .Name}}{{range .Ports}}{{$n}}:{{.}} {{end}}', ["web:80 web:443 ", ""]),
        ('{{printf "%s has %d ports, %q" .Name (len .Ports) .ID}}', ['web has 2 ports, "abc"', 'api has 0 ports, "defghijklmnop"']),
        ("{{pad .Name 1 2}}|", [" web  |", " api  |"]),
    ],
)
def test_templates_print_what_go_prints(fmt: str, want: list[str]) -> None:
    assert lines(fmt) == want


def test_json_is_compact_and_keeps_field_order() -> None:
    out = lines("{{json .}}")
    assert out[0] == '{"ID":"abc","Name":"web","DesiredState":"Running","Labels":{"b":"x","a":"1"},"Ports":[80,443]}'
    assert json.loads(out[1])["Name"] == "api"
    assert lines("{{json .Labels}}") == ['{"b":"x","a":"1"}', "{}"]


def test_table_template_has_a_header_and_aligned_columns() -> None:
    assert lines("table {{.ID}}\\t{{.Name}}\\t{{.DesiredState}}") == [
        "ID              NAME      DESIRED STATE",
        "abc             web       Running",
        "defghijklmnop   api       Shutdown",
    ]


def test_table_template_over_no_rows_prints_the_header_only() -> None:
    assert lines("table {{.ID}}\t{{.Name}}", []) == ["ID        NAME"]


def test_literal_backslash_escapes_become_tab_and_newline() -> None:
    assert Format.parse("{{.Name}}\\n{{.ID}}").render(RECS[0]) == "web\nabc"
    assert Format.parse("{{.Name}}\\t{{.ID}}").render(RECS[0]) == "web\tabc"


def test_inspect_templates_reach_nested_fields_and_say_no_value_for_missing_keys() -> None:
    obj = {"Spec": {"Name": "web", "Mode": {"Replicated": {"Replicas": 3}}}, "Version": {"Index": 7}}
    out = Format.parse("{{.Spec.Name}} {{.Spec.Mode.Replicated.Replicas}} {{.Version.Index}} {{.Nope}}").render_each([obj, obj])
    assert out == "web 3 7 <no value>\n" * 2


def test_nil_in_the_middle_of_a_field_chain_is_an_error() -> None:
    with pytest.raises(TemplateError, match="nil pointer evaluating .Replicas"):
        Format.parse("{{.Spec.Mode.Global.Replicas}}").render_each([{"Spec": {"Mode": {}}}])


def test_a_list_template_naming_an_unknown_field_names_the_known_ones() -> None:
    with pytest.raises(TemplateError, match=r'no field "Nmae" \(fields: DesiredState, ID, Labels, Name, Ports\)'):
        Format.parse("{{.Nmae}}").render_list(RECS)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{{.Name", "unclosed action"),
        ("{{if .Name}}x", "has no {{end}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{if .A}}a{{else}}b{{else}}c{{end}}", "two {{else}}"),
        ("{{foo .Name}}", 'function "foo" not defined'),
        ("{{.Name | foo}}", 'function "foo" not defined'),
        ('{{define "x"}}{{end}}', "not supported"),
        ('{{"abc}}', "unexpected"),
        ("{{}}", "missing value"),
        ("{{.Name |}}", "missing command"),
        ("{{(.Name}}", "unclosed ("),
        ("{{/* never closed", "unclosed comment"),
        ("", "empty format"),
        ("table", "empty format"),
    ],
)
def test_bad_templates_are_refused_at_parse_time(fmt: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace("{", r"\{").replace("|", r"\|")):
        Format.parse(fmt)


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("{{.Name.X}}", "can't evaluate field X in type string"),
        ("{{.Name 1}}", "can't give argument to non-function"),
        ("{{$x}}", 'undefined variable "\\$x"'),
        ("{{index .Ports 5}}", "index out of range"),
        ("{{range .Name}}{{end}}", "range can't iterate"),
        ('{{lt .Name 3}}', "incompatible types"),
        ("{{upper}}", "wrong arguments for upper"),
    ],
)
def test_templates_that_fail_on_the_data_say_why(fmt: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Format.parse(fmt).render(RECS[0])


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "<no value>"), (True, "true"), (3.0, "3"), (2.5, "2.5"), ({"b": 1, "a": [1, 2]}, "map[a:[1 2] b:1]"), ("s", "s")],
)
def test_values_print_as_go_prints_them(value: object, text: str) -> None:
    assert go_str(value) == text


def test_header_names_split_at_capitals() -> None:
    assert [header_name(k) for k in ("ID", "Name", "DesiredState", "EngineVersion")] == ["ID", "NAME", "DESIRED STATE", "ENGINE VERSION"]


def test_plain_words_are_not_templates() -> None:
    assert not is_template("table") and not is_template("JSON") and not is_template("")
    assert is_template("{{.ID}}") and is_template("table {{.ID}}") and is_template("plain text")


def test_tabwrite_pads_every_column_but_the_last() -> None:
    assert tabwrite("a\tb\tc\nlonger-cell\tx\ty") == "a             b         c\nlonger-cell   x         y"
