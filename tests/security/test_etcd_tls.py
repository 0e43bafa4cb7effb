"""Exploit (issue 11, High 3): etcd was open to anyone who could reach it (plain HTTP, no auth).

Whoever reached etcd's port read the sealed CA key, the specs and (then) the join tokens, and wrote
node roles. Now etcd serves TLS and admits only clients (and peers) with a certificate of its own CA,
an embedded etcd listens on loopback only, and shoal refuses to use an etcd without TLS.
"""

from __future__ import annotations

import ssl
import urllib.request

import pytest

from shoal import etcdtls
from shoal.manager.store.base import StoreError
from shoal.manager.store.etcd import connect
from shoal.node.options import ManagerOptions, NodeError

pytestmark = pytest.mark.etcd


def _health(url: str, ctx: ssl.SSLContext | None) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    with opener.open(f"{url}/health", timeout=3) as resp:
        return resp.read()


async def test_plain_http_gets_nothing(etcd_store, etcd_server):
    plain = etcd_server.endpoint.replace("https://", "http://")
    with pytest.raises(OSError):
        _health(plain, None)
    with pytest.raises(StoreError):
        await connect([plain], timeout=2.0)


async def test_tls_without_a_client_certificate_is_refused(etcd_store, etcd_server):
    ctx = ssl.create_default_context(cafile=str(etcd_server.tls.ca))  # trusts the server, shows no certificate
    with pytest.raises(OSError):
        _health(etcd_server.endpoint, ctx)


async def test_a_certificate_of_another_ca_is_refused(etcd_store, etcd_server, tmp_path):
    stranger = etcdtls.ensure_pair(tmp_path, "intruder", [], server=False)  # a CA of its own
    forged = etcdtls.EtcdTLS(etcd_server.tls.ca, stranger.cert, stranger.key)
    with pytest.raises(StoreError):
        await connect([etcd_server.endpoint], timeout=2.0, tls=forged)


async def test_the_right_client_certificate_is_admitted(etcd_store, etcd_server):
    ctx = ssl.create_default_context(cafile=str(etcd_server.tls.ca))
    ctx.load_cert_chain(str(etcd_server.tls.cert), str(etcd_server.tls.key))
    assert b'"health":"true"' in _health(etcd_server.endpoint, ctx)


def test_the_embedded_etcd_listens_on_loopback_only_with_client_certificates(etcd_server):
    argv = etcd_server.etcd._command("etcd")
    opt = {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}
    for flag in ("--listen-client-urls", "--listen-peer-urls"):
        assert all(u.startswith("https://127.0.0.1:") for u in opt[flag].split(",")), opt[flag]
    assert "--client-cert-auth" in argv and "--peer-client-cert-auth" in argv
    assert (etcd_server.tls.key.stat().st_mode & 0o077) == 0


def test_shoal_refuses_an_etcd_without_tls(tmp_path):
    with pytest.raises(NodeError, match="etcd must serve TLS"):
        ManagerOptions(data_dir=tmp_path / "d", etcd=["http://10.0.0.1:2379"]).check()
    with pytest.raises(NodeError, match="--etcd needs --etcd-ca"):
        ManagerOptions(data_dir=tmp_path / "d", etcd=["https://10.0.0.1:2379"]).check()
    assert not (tmp_path / "d").exists(), "nothing written"
