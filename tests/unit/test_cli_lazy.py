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
    probe = code + "\nimport sys\nloaded = sorted(sys.modules)\nimport json\nprint(json.dumps(loaded))"
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


def test_svc_ls_loads_neither_the_template_engine_nor_the_inspect_views() -> None:
    code = (
        "from tests.fixtures.cli_fakes import FakeStub, run\n"
        "fake = FakeStub()\nfake.services['s1'] = __import__('shoal.proto.types_pb2').proto.types_pb2.Service(id='s1')\n"
        "r = run(fake, 'service', 'ls')\nassert r.exit_code == 0 and 's1' in r.output, r.output"
    )
    loaded = _modules_after(code)
    assert "shoal.cli.service" in loaded
    for heavy in ("shoal.cli.template", "shoal.cli.docker_views", "shoal.spec_container", "google.protobuf.json_format"):
        assert heavy not in loaded, f"{heavy} is imported by `shoal svc ls`"


def test_a_format_template_still_loads_the_engine_when_given() -> None:
    code = (
        "from tests.fixtures.cli_fakes import FakeStub, run\n"
        "fake = FakeStub()\nfake.services['s1'] = __import__('shoal.proto.types_pb2').proto.types_pb2.Service(id='s1')\n"
        "r = run(fake, 'service', 'ls', '--format', '{{.ID}}')\nassert r.output == 's1\\n', r.output"
    )
    assert "shoal.cli.template" in _modules_after(code)


def test_a_local_run_loads_no_asyncio_nor_ctypes() -> None:
    code = (
        "from click.testing import CliRunner\nfrom shoal.cli.main import main\n"
        "r = CliRunner().invoke(main, ['run', '--help'])\nassert r.exit_code == 0, r.output\n"
        "from shoal.runtime.client.sync import SyncRuntime\nfrom shoal.runtime.spec import validate"
    )
    loaded = _modules_after(code)
    for heavy in ("asyncio", "ctypes", "shoal.runtime.client.runtime", "shoal.runtime.cgroup.v1", "hashlib"):
        assert heavy not in loaded, f"{heavy} is imported by `shoal run`"


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


def test_the_executable_answers_svc_ls_without_click_grpcio_or_logging(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`shoal svc ls` on a unix socket goes through shoal/cli/entry.py's fast path (here: nothing listens, so
    it fails as the click command does, with status 1), loading neither click, grpcio, nor logging; nor
    protobuf (svclswire.py reads the reply), typing, socket (unixrpc.py uses _socket) or re: each costs it
    5-35 ms of a ~60 ms command."""
    code = (
        "import sys\nfrom shoal.cli.entry import fast\n"
        f"status = fast(['-H', 'unix://{tmp_path}/none.sock', 'svc', 'ls'])\nprint(status, file=sys.stderr)"
    )
    loaded = _modules_after(code)
    assert "shoal.cli.fastsvc" in loaded
    for heavy in ("click", "grpc", "logging", "hpack", "shoal.cli.main", "shoal.cli.client", "google.protobuf", "typing", "socket", "re"):
        assert heavy not in loaded, f"{heavy} is imported by the fast `shoal svc ls`"


def test_finding_a_labs_manager_loads_no_certificate_code() -> None:
    """Every `shoal --lab NAME ...` reads the lab's state to find its manager: that state names the lab's
    etcd certificates, but only making one needs `cryptography` (~35 ms at each invocation)."""
    loaded = _modules_after("import shoal.lab.cluster, shoal.lab.state, shoal.lab.procs")
    assert "shoal.etcdtls" in loaded
    assert "cryptography" not in loaded and "shoal.tls" not in loaded
