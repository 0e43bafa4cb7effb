"""The click-free parser of the fast paths (shoal/cli/fastargs.py) against click itself: whatever command
line it accepts, click accepts too and reads the same way; whatever click refuses, it leaves to click."""

from __future__ import annotations

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.cli import fastargs
from shoal.cli.defaults import DEFAULT_HOST
from shoal.cli.fastsvc import LS_OPTIONS
from shoal.cli.main import main
from shoal.cli.service import list_services

ROOT_TOKENS = ["-H", "--host", "--host=unix:///a.sock", "-Hunix:///b.sock", "/c.sock", "unix:///d.sock", "--tlscacert",
               "--tlscert=x", "--lab", "lab1", "--lab=", "-H=/e.sock", "--", "-", "--version", "-h", "--help", "-x", "--hostx=1"]
LS_TOKENS = ["-q", "--quiet", "-f", "--filter", "--format", "name=web", "json", "table", "-fname=x", "--filter=mode=global",
             "--format=json", "-qf", "-fq", "x", "-", "--", "--nope", "-x", "--quiet=1", "-f=name=a", "JSON", "--help", "-h"]


def click_root(args: list[str]) -> tuple[dict, list[str]] | None:
    """(root option values given, the rest) as click's root group parses ``args``; None when it refuses."""
    try:
        ctx = main.make_context("shoal", list(args), resilient_parsing=False)
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    given_ = {k: v for k, v in ctx.params.items() if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE}
    return given_, [*ctx._protected_args, *ctx.args]


def click_ls(args: list[str]) -> dict | None:
    try:
        ctx = list_services.make_context("ls", list(args))
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    return ctx.params


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(ROOT_TOKENS), max_size=5))
def test_root_options_read_as_click_reads_them(tokens: list[str]) -> None:
    args = [*tokens, "svc", "ls"]
    fast = fastargs.parse(args, fastargs.ROOT_OPTIONS)
    if fast is None:
        return  # left to click: always allowed
    ref = click_root(args)
    assert ref is not None, f"fastargs accepted {args} that click refuses"
    assert fast[0] == ref[0] and fast[1] == ref[1], args


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(LS_TOKENS), max_size=6))
def test_svc_ls_options_read_as_click_reads_them(tokens: list[str]) -> None:
    fast = fastargs.parse(tokens, LS_OPTIONS)
    if fast is None or fast[1]:
        return
    ref = click_ls(tokens)
    assert ref is not None, f"fastargs accepted {tokens} that click refuses"
    want = {"filters": (), "fmt": "table", "quiet": False}
    assert {**want, **fast[0]} == ref, tokens


@pytest.mark.parametrize("args", [
    ["-q"], ["--quiet", "-f", "name=a", "--filter=mode=global", "-fid=1"], ["--format", "json"], ["--format=table", "-q"],
])
def test_the_ordinary_command_lines_are_taken(args: list[str]) -> None:
    fast = fastargs.parse(args, LS_OPTIONS)
    assert fast is not None and fast[1] == []
    assert {"filters": (), "fmt": "table", "quiet": False, **fast[0]} == click_ls(args)


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["-qf", "x"], ["--quiet=1"], ["-f"], ["-f", "-q"], ["--", "-q"], ["-f=name=a"], ["--nope"],
])
def test_anything_unusual_is_left_to_click(args: list[str]) -> None:
    assert fastargs.parse(args, LS_OPTIONS) is None


def test_options_end_at_the_first_argument_and_typed_values_convert() -> None:
    opts = (fastargs.Opt("n", ("-n",), convert=int), fastargs.Opt("d", ("-d",), fastargs.FLAG))
    assert fastargs.parse(["-n", "3", "-d", "img", "-n", "4"], opts) == ({"n": 3, "d": True}, ["img", "-n", "4"])
    assert fastargs.parse(["-n", "x", "img"], opts) is None  # click's "not a valid integer": click says it
    assert fastargs.parse(["-", "-n", "1"], opts) == ({}, ["-", "-n", "1"])


def test_root_host_comes_from_the_command_line_then_the_environment() -> None:
    r = fastargs.parse_root(["-H", "/x.sock", "svc", "ls"], {"SHOAL_HOST": "/env.sock"})
    assert r is not None and (r.host, r.host_given, r.rest) == ("/x.sock", True, ["svc", "ls"])
    r = fastargs.parse_root(["svc", "ls"], {"SHOAL_HOST": "/env.sock"})
    assert r is not None and (r.host, r.host_given) == ("/env.sock", False)
    r = fastargs.parse_root(["--host=", "svc"], {"SHOAL_HOST": ""})
    assert r is not None and r.host == DEFAULT_HOST  # the commands read an empty --host as the default


def test_a_lab_is_left_to_click() -> None:
    assert fastargs.parse_root(["--lab", "x", "svc", "ls"], {}) is None
    assert fastargs.parse_root(["svc", "ls"], {"SHOAL_LAB": "x"}) is None
    assert fastargs.parse_root(["svc", "ls"], {"SHOAL_LAB": ""}) is not None
