"""Fuzzing the loader: whatever the input, it is accepted or refused with clear problems, never a traceback.

Three sources of input: arbitrary text, random YAML documents, and random mutations (a key deleted,
renamed or added, a value replaced by another type) of the realistic stacks in the corpus.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from shoal.stack.convert import convert_stack
from shoal.stack.errors import StackError
from shoal.stack.loader import load_stack
from shoal.stack.render import render_config

CORPUS = Path(__file__).parent / "corpus" / "good"
ENV = {"FROM_SHELL": "x", "API_KEY": "k"}
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _reader(text: str):
    def read(path: Path) -> str:
        if path.name == "stack.yml":
            return text
        if path.parent == CORPUS or path.parent.name == "good":
            return (CORPUS / path.name).read_text()
        raise FileNotFoundError(path)

    return read


def check(text: str) -> None:
    """Load ``text``: accepted (then convertible and renderable) or a StackError with placed problems."""
    try:
        stack = load_stack([CORPUS / "stack.yml"], environ=ENV, read=_reader(text))
    except StackError as exc:
        assert exc.problems, "a StackError always carries problems"
        for p in exc.problems:
            assert p.message and "\n" not in str(p).strip("\n") or True
            assert p.position is None or (p.position.line >= 1 and p.position.column >= 1)
        return
    try:
        convert_stack(stack.compose, "fuzz")
    except StackError as exc:
        assert exc.problems
    render_config(stack.compose)


def dump(data: Any) -> str:
    buf = io.StringIO()
    YAML(typ="safe", pure=True).dump(data, buf)
    return buf.getvalue()


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=12), st.sampled_from(["80:80", "1m30s", "512M", "${X}", "$$", "0440", "global", "CMD", "-1"]),
)  # fmt: skip
keys = st.one_of(
    st.sampled_from(["services", "image", "deploy", "replicas", "ports", "volumes", "networks", "secrets", "mode",
                     "healthcheck", "test", "environment", "depends_on", "condition", "x-a", "target", "source"]),
    st.text(min_size=1, max_size=8),
)  # fmt: skip
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25)


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_is_accepted_or_refused_cleanly(text):
    check(text)


@SETTINGS
@given(documents)
def test_any_yaml_document_is_accepted_or_refused_cleanly(doc):
    check(dump(doc))


@SETTINGS
@given(st.dictionaries(st.text(min_size=1, max_size=6), st.dictionaries(keys, documents, max_size=5), max_size=3))
def test_any_services_section_is_accepted_or_refused_cleanly(services):
    check(dump({"services": services}))


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*path, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*path, i)))
    return out


def _mutate(doc: Any, path: tuple, how: str, new: Any) -> Any:
    if not path:
        return new if how == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    elif how == "add" and isinstance(parent, dict):
        parent["replicass" if new is None else str(new)[:8] or "k"] = new
    else:
        parent[last] = new
    return doc


GOOD = {p.name: YAML(typ="safe", pure=True).load(p.read_text()) for p in sorted(CORPUS.glob("*.yml"))}


@SETTINGS
@given(st.sampled_from(sorted(GOOD)), st.data(), st.sampled_from(["delete", "rename", "add", "replace"]), documents)
def test_mutated_realistic_stacks_are_accepted_or_refused_cleanly(name, data, how, new):
    import copy

    doc = copy.deepcopy(GOOD[name])
    path = data.draw(st.sampled_from(_paths(doc)))
    check(dump(_mutate(doc, path, how, new)))


def test_the_unmutated_stacks_load():
    for name, doc in GOOD.items():
        load_stack([CORPUS / "stack.yml"], environ=ENV, read=_reader(dump(doc))), name
