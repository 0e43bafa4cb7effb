"""The fast ``shoal run`` (shoal/cli/fastrun.py) reads a command line as the click command does, or leaves it
to click: checked against click itself, and for each reason to leave it (help, cluster, network, bad values)."""

from __future__ import annotations

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.cli import fastargs, fastrun
from shoal.cli.run import run_command
from shoal.cli.runflags import RUN_FLAGS

TOKENS = ["--rm", "-d", "--detach", "--name", "web", "-e", "A=1", "-eB=2", "--env=C", "-m", "64m", "--memory=1g", "--cpus",
          "0.5", "--cpu-shares", "512", "--cpu-shares=x", "--pids-limit=7", "-h", "box", "--hostname", "--init", "--userns",
          "--entrypoint", "", "-u", "1000", "-w", "/w", "-v", "/a:/b", "--tmpfs", "/t", "--read-only", "--stop-timeout",
          "2.5", "-l", "k=v", "-p", "8080:80", "--network", "net", "--root", "/r", "-dit", "--help", "-", "--", "--bogus",
          "busybox", "true", "-x"]


def click_params(args: list[str]) -> dict | None:
    try:
        ctx = run_command.make_context("run", list(args))
    except (click.exceptions.ClickException, click.exceptions.Exit):
        return None
    return ctx.params


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=8))
def test_run_flags_read_as_click_reads_them(tokens: list[str]) -> None:
    args = [*tokens, "busybox", "echo", "-n", "hi"]
    parsed = fastargs.parse(args, fastrun.options())
    if parsed is None or not parsed[1]:
        return
    ref = click_params(args)
    assert ref is not None, f"fastargs accepted {args} that click refuses"
    values, (image, *command) = parsed
    mine = {opt.dest: values.get(opt.dest, fastrun._default(opt)) for opt in fastrun.options()}
    mine["root"] = values.get("root", ref["root"])  # click's default (or SHOAL_ROOT) when not given
    assert {**mine, "image": image, "command": tuple(command)} == ref, args


def test_the_table_is_the_click_commands_options_in_order() -> None:
    names = [p.opts for p in run_command.params if isinstance(p, click.Option)]
    assert names == [list(opt.names) for opt, _ in RUN_FLAGS] + [["--root"]]


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastrun.os, "geteuid", lambda: 0)
    monkeypatch.setattr(fastrun, "_run", lambda *a: pytest.fail(f"ran {a}"))


@pytest.mark.parametrize("args", [
    ["--help"], [], ["--rm"], ["-it", "busybox"], ["--network", "net", "busybox"], ["-m", "12Q", "busybox"],
    ["--cpus", "lots", "busybox"], ["--mount", "type=nope", "busybox"], ["-p", "99999:80", "busybox"],
    ["--ulimit", "nofile", "busybox"], ["--security-opt", "apparmor=x", "busybox"], ["--pids-limit", "many", "busybox"],
    ["--root", "", "busybox"],
])
def test_anything_click_would_refuse_or_word_is_left_to_it(as_root: None, args: list[str]) -> None:
    root = fastargs.Root("unix:///run/shoal/manager.sock", False, [])
    assert fastrun.run(root, args) is None


def test_a_cluster_named_on_the_command_line_or_no_root_is_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastrun, "_run", lambda *a: pytest.fail(f"ran {a}"))
    monkeypatch.setattr(fastrun.os, "geteuid", lambda: 0)
    assert fastrun.run(fastargs.Root("/m.sock", True, []), ["busybox", "true"]) is None
    monkeypatch.setattr(fastrun.os, "geteuid", lambda: 1000)
    assert fastrun.run(fastargs.Root("/m.sock", False, []), ["busybox", "true"]) is None


def test_a_plain_run_goes_ahead_with_the_flags_as_read(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple] = []
    monkeypatch.setattr(fastrun.os, "geteuid", lambda: 0)
    monkeypatch.setattr(fastrun, "_run", lambda *a: seen.append(a) or 7)
    monkeypatch.setenv("SHOAL_ROOT", "/srv/local")
    root = fastargs.Root("/m.sock", False, [])
    assert fastrun.run(root, ["--rm", "-e", "A=1", "--name", "x", "busybox", "sh", "-c", "exit 7"]) == 7
    state_dir, image, command, o, name, remove, detach = seen[0]
    assert (state_dir, image, command, name, remove, detach) == ("/srv/local", "busybox", ("sh", "-c", "exit 7"), "x", True, False)
    assert o["env"] == ("A=1",) and o["cpu_shares"] == 0 and o["memory"] is None
