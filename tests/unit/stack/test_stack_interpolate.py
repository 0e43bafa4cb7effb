"""Variable substitution and env files, as the compose specification defines them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.stack.errors import Problems, StackError
from shoal.stack.interpolate import TemplateError, parse_env_text, substitute
from shoal.stack.loader import load_stack

ENV = {"SET": "value", "EMPTY": ""}


@pytest.mark.parametrize(
    "text,out",
    [
        ("$SET", "value"), ("${SET}", "value"), ("a${SET}b", "avalueb"), ("$SET-x", "value-x"), ("$UNSET", ""),
        ("${UNSET:-d}", "d"), ("${EMPTY:-d}", "d"), ("${SET:-d}", "value"),
        ("${UNSET-d}", "d"), ("${EMPTY-d}", ""), ("${SET-d}", "value"),
        ("${SET:+alt}", "alt"), ("${EMPTY:+alt}", ""), ("${UNSET:+alt}", ""),
        ("${SET+alt}", "alt"), ("${EMPTY+alt}", "alt"), ("${UNSET+alt}", ""),
        ("${EMPTY?err}", ""), ("$$", "$"), ("$$SET", "$SET"), ("cost: $$5", "cost: $5"),
        ("${UNSET:-${SET}}", "value"), ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"), ("${UNSET:-a:b-c}", "a:b-c"),
        ("no variables", "no variables"), ("${SET}${SET}", "valuevalue"), ("_$SET", "_value"),
    ],
)  # fmt: skip
def test_substitution_forms(text, out):
    assert substitute(text, ENV.get) == out


@pytest.mark.parametrize(
    "text,message",
    [
        ("${UNSET:?tell me}", "required variable UNSET is missing a value: tell me"),
        ("${EMPTY:?must not be empty}", "required variable EMPTY is missing a value: must not be empty"),
        ("${UNSET?}", "required variable UNSET is missing a value$"),
        ("$", "use $$ for a literal $"),
        ("$1", "use $$ for a literal $"),
        ("price $ 5", "use $$ for a literal $"),
        ("${", "missing closing '}'"),
        ("${SET", "missing closing '}'"),
        ("${}", "'${}' is not a variable name"),
        ("${1A}", "is not a variable name"),
        ("${SET:x}", "unexpected ':x' after SET"),
    ],
)
def test_malformed_references_are_errors(text, message):
    pattern = message if message.endswith("value$") else re.escape(message)
    with pytest.raises(TemplateError, match=pattern):
        substitute(text, ENV.get)


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40))
def test_text_without_dollars_is_unchanged(text):
    assert substitute(text, ENV.get) == text


@settings(deadline=None)  # a loaded machine must not turn a slow example into a failure
@given(st.text(max_size=40))
def test_escaped_text_comes_back_as_written(text):
    assert substitute(text.replace("$", "$$"), ENV.get) == text


def test_only_values_under_the_stack_sections_are_substituted(tmp_path):
    (tmp_path / "s.yml").write_text(
        "x-note: ${NOT_SUBSTITUTED}\nservices:\n  web:\n    image: nginx:${TAG}\n    labels:\n      ${KEY}: v\n"
    )
    stack = load_stack([tmp_path / "s.yml"], environ={"TAG": "1", "KEY": "k"})
    assert stack.compose.services["web"].image == "nginx:1"
    assert stack.compose.services["web"].labels == {"${KEY}": "v"}  # keys are never substituted


def test_dotenv_beside_the_first_file_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("TAG=from-dotenv\nREPLICAS=3\n# a comment\nexport MODE='global'\n")
    (tmp_path / "s.yml").write_text(
        "services:\n  web:\n    image: nginx:${TAG}\n    deploy:\n      replicas: ${REPLICAS}\n  agent:\n    image: a\n    deploy: {mode: '${MODE}'}\n"
    )
    stack = load_stack([tmp_path / "s.yml"], environ={"TAG": "from-env"})
    assert stack.compose.services["web"].image == "nginx:from-env"
    assert stack.compose.services["web"].deploy.replicas == 3
    assert stack.compose.services["agent"].deploy.mode == "global"


def test_an_interpolated_value_is_validated_with_its_position(tmp_path):
    (tmp_path / "s.yml").write_text("services:\n  web:\n    image: nginx\n    deploy:\n      replicas: ${N}\n")
    with pytest.raises(StackError) as info:
        load_stack([tmp_path / "s.yml"], environ={"N": "many"})
    assert [str(p) for p in info.value.problems] == [f"{tmp_path / 's.yml'}:5:17: services.web.deploy.replicas: expected a whole number, got 'many'"]


@pytest.mark.parametrize(
    "line,key,value",
    [
        ("A=1", "A", "1"), ("A = 1 ", "A", "1"), ("export A=1", "A", "1"), ("A='x # y'", "A", "x # y"),
        ('A="line\\nnext"', "A", "line\nnext"), ("A=x # comment", "A", "x"), ("A=x#notacomment", "A", "x#notacomment"),
        ("A=", "A", ""), ('A="say \\"hi\\""', "A", 'say "hi"'), ("A.B-C=1", "A.B-C", "1"),
    ],
)  # fmt: skip
def test_env_file_lines(line, key, value):
    problems = Problems()
    assert parse_env_text(line, "f.env", problems) == {key: value}
    assert not problems


def test_env_file_bare_names_come_from_the_environment_and_bad_lines_are_reported():
    problems = Problems()
    out = parse_env_text("HOME\nMISSING\n1BAD=x\nQ='open\n", "f.env", problems, {"HOME": "/root"})
    assert out == {"HOME": "/root"}
    assert [str(p) for p in problems.items] == [
        "f.env:3:1: invalid variable name '1BAD' in env file",
        "f.env:4:3: Q: unterminated single-quoted value",
    ]
