"""Cluster images between two manager processes on real etcd with mutual TLS (issue 12: it was tested only on
the in-memory store over insecure gRPC).

Two ``shoal manager`` processes on the session's etcd (TLS with client certificates): the first creates
the cluster, the second joins it with the manager token. An image loaded through the first is
replicated to the second (its blobs on disk, the etcd record naming both holders); with the first
manager killed, the second still lists the image and its own node pulls it and runs a container.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.manager.store import keys
from shoal.proto import images_pb2 as ipb
from tests.e2e.clicluster import CliCluster, free_port
from tests.fixtures import busybox_image
from tests.timing import eventually

pytestmark = [
    pytest.mark.etcd,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: layer extraction keeps owners; the node runs a container"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


class TwoManagers(CliCluster):
    def on(self, name: str, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
        return self.shoal("-H", f"unix://{self.tmp / name}.sock", *args, check=check)

    def manager(self, name: str, etcd_server, *extra: str) -> None:  # type: ignore[no-untyped-def]
        tls = etcd_server.tls
        self.start("manager", "--data-dir", str(self.tmp / name), "--listen-addr", f"127.0.0.1:{free_port()}",
                   "--socket", str(self.tmp / f"{name}.sock"), "--hostname", name, "--etcd", etcd_server.endpoint,
                   "--etcd-ca", str(tls.ca), "--etcd-cert", str(tls.cert), "--etcd-key", str(tls.key),
                   "--heartbeat-period", "0.5", *extra, name=name)  # fmt: skip


@pytest.fixture
def two(tmp_path: Path, etcd_store, etcd_server) -> Iterator[TwoManagers]:  # type: ignore[no-untyped-def]
    if shutil.which("etcd") is None:
        pytest.skip(reason="etcd binary not found; run make setup")
    c = TwoManagers(tmp_path, str(tmp_path / "m1.sock"), "")
    try:
        c.manager("m1", etcd_server, "--init")
        out = tmp_path / "m1.out"
        token = c.wait_for(lambda: (m := re.search(r"shoal manager --join (\S+) --token (SHOAL-1-\S+)", out.read_text()))
                           and m.groups(), what="the manager token")
        c.addr = token[0]
        c.manager("m2", etcd_server, "--join", token[0], "--token", token[1])
        c.wait_for(lambda: c.on("m1", "node", "ls", check=False).stdout.count(" Ready ") == 2, what="both managers Ready")
        yield c
    finally:
        c.stop()


async def _record(etcd_store) -> ipb.ImageRecord | None:  # type: ignore[no-untyped-def]
    rng = await etcd_store.range(keys.IMAGES)
    if not rng.kvs:
        return None
    rec = ipb.ImageRecord()
    rec.ParseFromString(rng.kvs[0].value)
    return rec


def _blobs(c: TwoManagers, name: str) -> set[str]:
    d = c.tmp / name / "cluster-images" / "blobs"
    return {p.name for p in d.iterdir()} if d.exists() else set()


async def test_an_image_loaded_on_one_manager_is_served_by_the_other_after_the_first_dies(two: TwoManagers, etcd_store):
    c = two
    tar = c.tmp / "busybox.tar"
    busybox_image.build(str(tar))
    assert "Loaded image: busybox:latest" in c.on("m1", "image", "load", "--cluster", "-i", str(tar)).stdout

    first = await _record(etcd_store)
    assert first is not None and list(first.repo_tags) == ["busybox:latest"] and first.layers
    c.wait_for(lambda: _blobs(c, "m1") and _blobs(c, "m2") == _blobs(c, "m1"), timeout=60,
               what="the second manager holding every blob")
    ids = {n["Hostname"]: n["ID"] for n in map(json.loads, c.on("m1", "node", "ls", "--format", "json").stdout.splitlines())}

    async def both_hold() -> bool:
        rec = await _record(etcd_store)
        return rec is not None and set(rec.holders) >= {ids["m1"], ids["m2"]}

    await eventually(both_hold, 60, "the etcd record naming both managers as holders", interval=0.5)
    held = " ".join(_blobs(c, "m2"))
    assert all(layer.split(":")[-1] in held for layer in first.layers), "every layer's blob, by its diff_id"

    m1 = next(p for p in c.procs if "m1" in " ".join(map(str, p.args)))
    m1.kill()
    m1.wait()
    c.wait_for(lambda: "busybox" in c.on("m2", "image", "ls", "--cluster", check=False).stdout, timeout=60,
               what="the image listed by the surviving manager")
    # sleep as PID 1 ignores SIGTERM: a 1 s grace, so the manager's stop at teardown need not wait 10 s for it
    c.on("m2", "svc", "create", "--name", "bb", "--constraint", "node.hostname==m2", "--stop-grace-period", "1s",
         "busybox", "sleep", "1000")

    def running() -> bool:
        rows = map(json.loads, c.on("m2", "svc", "ps", "bb", "--format", "json", check=False).stdout.splitlines())
        return any(r["CurrentState"].startswith("Running") for r in rows)

    c.wait_for(running, timeout=90, what="a busybox task pulled through the surviving manager and running")
    c.on("m2", "svc", "rm", "bb")
