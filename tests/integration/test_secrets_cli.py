"""``shoal secret|config`` and the --secret/--config flags of ``svc create/update``, through the CLI against a
real manager (real etcd, real gRPC on its unix socket): output shapes, filters, formats, refusals."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from shoal.cli.main import main
from shoal.manager.store import keys
from shoal.proto import control_pb2 as cpb

CLEAR = b"cli-secret-payload-0123456789"


LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


@dataclass
class Out:
    exit_code: int
    output: str


async def cli(cluster, *args: str, stdin: bytes | None = None) -> Out:  # type: ignore[no-untyped-def]
    """Run ``shoal -H <the manager's socket> ARGS`` in a thread (the manager serves on this loop); the
    manager's own log lines (same process, same stdout) are left out of the output."""
    sock = f"unix://{cluster.tmp / 'm.sock'}"
    r: Result = await asyncio.to_thread(CliRunner().invoke, main, ["-H", sock, *args], input=stdin)
    return Out(r.exit_code, "".join(line for line in r.output.splitlines(True) if not LOG_LINE.match(line)))


async def test_secret_create_ls_inspect_rm(cluster, tmp_path: Path):
    f = tmp_path / "pw"
    f.write_bytes(CLEAR)
    r = await cli(cluster, "secret", "create", "-l", "env=prod", "db_pw", str(f))
    assert r.exit_code == 0, r.output
    sid = r.output.strip()
    r = await cli(cluster, "secret", "create", "api_key", "-", stdin=b"from-stdin")
    assert r.exit_code == 0, r.output
    out = (await cli(cluster, "secret", "ls")).output.splitlines()
    assert out[0].split() == ["ID", "NAME", "DRIVER", "CREATED", "UPDATED"]  # docker's columns (no driver: shoal's own)
    assert [line.split()[1] for line in out[1:]] == ["api_key", "db_pw"]
    assert (await cli(cluster, "secret", "ls", "-q", "--filter", "label=env=prod")).output.split() == [sid]
    assert (await cli(cluster, "secret", "ls", "--filter", "name=api", "--format", "{{.Name}}")).output.split() == ["api_key"]
    r = await cli(cluster, "secret", "inspect", "db_pw")
    assert r.exit_code == 0, r.output
    (obj,) = json.loads(r.output)
    assert obj["ID"] == sid and obj["Spec"] == {"Name": "db_pw", "Labels": {"env": "prod"}}
    assert obj["CreatedAt"].endswith("Z") and obj["Version"]["Index"] > 0
    assert CLEAR.decode() not in r.output and "Data" not in obj["Spec"]  # inspect never shows a secret
    assert "Name:            db_pw" in (await cli(cluster, "secret", "inspect", "--pretty", "db_pw")).output
    assert (await cli(cluster, "secret", "inspect", "-f", "{{.Spec.Name}}", sid)).output.strip() == "db_pw"
    r = await cli(cluster, "secret", "rm", "db_pw", "nope")
    assert r.exit_code == 1 and "secret not found: nope" in r.output
    assert (await cli(cluster, "secret", "ls", "-q")).output.split() != [sid]


async def test_config_inspect_shows_the_data(cluster, tmp_path: Path):
    f = tmp_path / "app.conf"
    f.write_text("port = 8080\n")
    assert (await cli(cluster, "config", "create", "app", str(f))).exit_code == 0
    (obj,) = json.loads((await cli(cluster, "config", "inspect", "app")).output)
    assert obj["Spec"]["Name"] == "app" and obj["Spec"]["Data"] == "cG9ydCA9IDgwODAK"  # base64, as docker's JSON
    assert "port = 8080" in (await cli(cluster, "config", "inspect", "--pretty", "app")).output
    assert (await cli(cluster, "config", "ls", "-q")).output.strip()
    assert (await cli(cluster, "config", "rm", "app")).exit_code == 0


async def test_bad_input_is_one_clear_error_and_writes_nothing(cluster, etcd_store, tmp_path: Path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * (600 * 1024))
    r = await cli(cluster, "secret", "create", "big", str(big))
    assert r.exit_code == 1 and r.output.strip() == "Error: secret data must be larger than 0 and less than 512000 bytes (500 KiB); got 614400 bytes"
    r = await cli(cluster, "secret", "create", "big", "-", stdin=b"x" * (500 * 1024))
    assert r.exit_code == 1 and "got more than 512000 bytes" not in r.output and "got 512000 bytes" in r.output
    r = await cli(cluster, "secret", "create", "bad name", "-", stdin=b"x")
    assert r.exit_code == 1 and "invalid secret name 'bad name'" in r.output
    r = await cli(cluster, "secret", "create", "x", str(tmp_path / "missing"))
    assert r.exit_code == 1 and "cannot read secret data" in r.output
    r = await cli(cluster, "svc", "create", "--name", "web", "--secret", "nope", "-d", "host", "sleep", "100")
    assert r.exit_code == 1 and r.output.strip() == "Error: invalid service spec: secret not found: nope"
    await cli(cluster, "secret", "create", "pw", "-", stdin=b"x")
    r = await cli(cluster, "svc", "create", "--name", "web", "--secret", "source=pw,mode=999", "-d", "host", "sleep", "100")
    assert r.exit_code == 2 and "invalid mode '999'" in r.output
    r = await cli(cluster, "svc", "create", "--name", "web", "--secret", "source=pw,uid=root", "-d", "host", "sleep", "100")
    assert r.exit_code == 2 and "invalid uid 'root'" in r.output
    assert not (await etcd_store.range(keys.KINDS["service"][0])).kvs
    assert not (await etcd_store.range(keys.SERVICE_NAMES)).kvs


async def test_service_flags_reference_and_update_secrets(cluster):
    for name in ("a", "b"):
        await cli(cluster, "secret", "create", name, "-", stdin=b"v")
    await cli(cluster, "config", "create", "c", "-", stdin=b"v")
    r = await cli(cluster, "svc", "create", "--name", "web", "--secret", "a", "--secret", "source=b,target=bee,uid=7,mode=0400",
                  "--config", "source=c,target=/etc/c.conf", "-d", "host", "sleep", "100")
    assert r.exit_code == 0, r.output
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
    got = [(s.secret_name, s.file.name, s.file.uid, s.file.mode) for s in svc.spec.container.secrets]
    assert got == [("a", "a", "0", 0o444), ("b", "bee", "7", 0o400)]
    assert svc.spec.container.configs[0].file.name == "/etc/c.conf"
    r = await cli(cluster, "secret", "rm", "a")
    assert r.exit_code == 1 and "secret 'a' is in use by the following service: web" in r.output
    r = await cli(cluster, "svc", "update", "--secret-rm", "a", "--config-rm", "c", "-d", "web")
    assert r.exit_code == 0, r.output
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
    assert [s.secret_name for s in svc.spec.container.secrets] == ["b"] and not svc.spec.container.configs
    r = await cli(cluster, "svc", "update", "--secret-rm", "nosuch", "--config-rm", "c", "-d", "web")
    assert r.exit_code == 0, r.output  # docker ignores a removal of what the service does not reference
    svc = (await cluster.control.GetService(cpb.GetServiceRequest(service_id="web"))).service
    assert [s.secret_name for s in svc.spec.container.secrets] == ["b"]
    assert (await cli(cluster, "secret", "rm", "a")).exit_code == 0
    r = await cli(cluster, "svc", "update", "--secret-add", "a", "-d", "web")
    assert r.exit_code == 1 and "secret not found: a" in r.output
