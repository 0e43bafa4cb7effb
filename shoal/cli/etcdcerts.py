"""``shoal etcd-certs``: etcd's own CA and the certificates of its members and clients, for a deployment.

etcd serves TLS with client-certificate auth for clients and peers (see ``shoal.etcdtls`` for why it
has a CA of its own). Run once on a trusted machine, copy each member its files and every manager
the client ones; running it again adds what is missing and keeps what exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from shoal import etcdtls

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def parse_member(text: str) -> tuple[str, list[str]]:
    """``node1=10.0.0.11[,host.example]`` -> ("node1", ["10.0.0.11", "host.example"]); BadParameter otherwise."""
    name, sep, addrs = text.partition("=")
    if not sep or not NAME.fullmatch(name) or not addrs:
        raise click.BadParameter(f"{text!r}: expected NAME=ADDR[,ADDR...] (NAME of letters, digits, '.', '_', '-')", param_hint="--member")
    return name, [a for a in addrs.split(",") if a]


@click.command("etcd-certs")
@click.option("--dir", "directory", required=True, type=click.Path(path_type=Path), help="where the CA and certificates go")
@click.option("--member", "members", multiple=True, help="an etcd member: NAME=ADDR[,ADDR...] (repeat per member)")
@click.option("--client", "clients", multiple=True, help="a client certificate name (default: managers)")
def etcd_certs_cmd(directory: Path, members: tuple[str, ...], clients: tuple[str, ...]) -> None:
    """Create etcd's CA (once) and certificates for its members and its clients (the managers)."""
    parsed = [parse_member(m) for m in members]
    names = list(clients) or ["managers"]
    for c in names:
        if not NAME.fullmatch(c):
            raise click.BadParameter(f"{c!r}: use letters, digits, '.', '_', '-'", param_hint="--client")
    for name, addrs in parsed:
        f = etcdtls.ensure_pair(directory, name, [*addrs, "127.0.0.1"], server=True)
        click.echo(f"member {name}: {f.cert} {f.key}")
    for c in names:
        f = etcdtls.ensure_pair(directory, c, [], server=False)
        click.echo(f"client {c}: {f.cert} {f.key}")
    click.echo(f"CA: {directory / 'ca.crt'} (its key {directory / 'ca.key'} stays here)")
