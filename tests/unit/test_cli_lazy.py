"""The CLI loads a command's module only when that command runs: `shoal run` needs no gRPC, `shoal svc ls`
no runtime, stack loader or lab engine (each costs tens to hundreds of milliseconds per invocation)."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from shoal.cli.main import LAZY_COMMANDS, main


def _modules_after(code: str) -> set[str]:
    """The top-level shoal/grpc modules a fresh interpreter holds after running ``code``."""
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_loads_no_command_module() -> None:
    loaded = _modules_after("import shoal.cli.main")
    for heavy in ("grpc", "shoal.runtime", "shoal.stack", "shoal.lab", "shoal.manager", "shoal.worker", "pydantic"):
        assert heavy not in loaded, f"{heavy} is imported by `import shoal.cli.main`"


def test_a_local_command_loads_no_grpc() -> None:
    code = (
        "from click.testing import CliRunner\nfrom shoal.cli.main import main\n"
        "r = CliRunner().invoke(main, ['run', '--help'])\nassert r.exit_code == 0, r.output"
    )
    loaded = _modules_after(code)
    assert "shoal.cli.run" in loaded
    assert "grpc" not in loaded and "shoal.stack" not in loaded


def test_a_cluster_command_loads_no_runtime() -> None:
    code = (
        "from click.testing import CliRunner\nfrom shoal.cli.main import main\n"
        "r = CliRunner().invoke(main, ['service', 'ls', '--help'])\nassert r.exit_code == 0, r.output"
    )
    loaded = _modules_after(code)
    assert "shoal.cli.service" in loaded
    assert "shoal.runtime" not in loaded and "shoal.stack" not in loaded and "shoal.lab" not in loaded


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_every_lazy_name_resolves_to_that_command(name: str) -> None:
    ctx = click.Context(main)
    cmd = main.get_command(ctx, name)
    assert isinstance(cmd, click.Command)
    assert cmd.name == name


def test_help_lists_every_command_and_aliases_still_resolve() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    for name in LAZY_COMMANDS:
        assert f"  {name} " in out
    ctx = click.Context(main)
    assert main.get_command(ctx, "svc") is main.get_command(ctx, "service")
    assert main.get_command(ctx, "no-such-command") is None
