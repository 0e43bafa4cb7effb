"""Secrets and configs through the control API on real etcd and real gRPC, and what nodes are sent.

A manager with fake-executor agents: the objects (create, list, inspect, rm and its refusals), service
references (resolved, refused when unknown with nothing written), what etcd holds (read raw: never a
secret in clear), and which agent receives which secret (only the one that runs a task using it, and
only until the task runs).
"""

from __future__ import annotations

import grpc
import pytest

from shoal import secretspec
from shoal.manager.secretapi import SecretAPI
from shoal.manager.store import keys, objects
from shoal.manager.store.kinds import Kind
from shoal.proto import control_pb2 as cpb
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from tests.fixtures.cluster import Cluster, running_n, spec

CLEAR = b"s3cr3t-value-that-must-never-be-in-etcd"


async def refused(call, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await call
    assert exc.value.code() == code, exc.value.details()
    return exc.value.details()


async def create_secret(cluster: Cluster, name: str, data: bytes = CLEAR, **labels: str) -> pb.Secret:
    req = cpb.CreateSecretRequest(spec=pb.SecretSpec(name=name, data=data, labels=labels))
    return (await cluster.control.CreateSecret(req)).secret


async def all_etcd_values(store) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [kv.key.encode() + b"=" + kv.value for kv in (await store.range(keys.PREFIX)).kvs]


def with_secret(name: str, secret: str, target: str = "") -> pb.ServiceSpec:
    s = spec(name, replicas=1)
    s.container.secrets.add(secret_name=secret, file=pb.FileTarget(name=target))
    return s


async def test_secret_is_stored_sealed_and_never_returned(cluster, etcd_store):
    sec = await create_secret(cluster, "db_pw", team="a")
    assert sec.id and sec.spec.name == "db_pw" and not sec.spec.data and not sec.data_sealed
    got = (await cluster.control.GetSecret(cpb.GetSecretRequest(secret_id="db_pw"))).secret
    assert got.id == sec.id and dict(got.spec.labels) == {"team": "a"} and not got.spec.data and not got.data_sealed
    listed = (await cluster.control.ListSecrets(cpb.ListSecretsRequest())).secrets
    assert [s.spec.name for s in listed] == ["db_pw"] and not listed[0].data_sealed
    raw = await all_etcd_values(etcd_store)  # an etcd reader (a backup, a stolen disk) finds no clear secret
    assert not any(CLEAR in v for v in raw)
    assert any(k.startswith(b"/shoal/v1/secrets/") for k in raw)


async def test_bad_secrets_are_refused_and_nothing_is_written(cluster, etcd_store):
    big = cluster.control.CreateSecret(cpb.CreateSecretRequest(spec=pb.SecretSpec(name="big", data=b"x" * 500 * 1024)))
    assert "less than 512000 bytes" in await refused(big, grpc.StatusCode.INVALID_ARGUMENT)
    bad = cluster.control.CreateSecret(cpb.CreateSecretRequest(spec=pb.SecretSpec(name="-bad", data=b"x")))
    assert "invalid secret name" in await refused(bad, grpc.StatusCode.INVALID_ARGUMENT)
    empty = cluster.control.CreateConfig(cpb.CreateConfigRequest(spec=pb.ConfigSpec(name="c", data=b"")))
    assert "config data must be larger than 0" in await refused(empty, grpc.StatusCode.INVALID_ARGUMENT)
    assert not [k for k in await all_etcd_values(etcd_store) if b"secrets/" in k.split(b"=")[0] or b"configs/" in k.split(b"=")[0]]
    await create_secret(cluster, "one")
    dup = cluster.control.CreateSecret(cpb.CreateSecretRequest(spec=pb.SecretSpec(name="one", data=b"y")))
    assert "secret one already exists" in await refused(dup, grpc.StatusCode.ALREADY_EXISTS)


async def test_service_with_unknown_secret_is_refused_with_nothing_written(cluster):
    msg = await refused(cluster.control.CreateService(cpb.CreateServiceRequest(spec=with_secret("web", "nope"))), grpc.StatusCode.INVALID_ARGUMENT)
    assert msg == "invalid service spec: secret not found: nope"
    assert not (await cluster.control.ListServices(cpb.ListServicesRequest())).services


async def test_references_resolve_to_ids_and_rm_is_refused_while_used(cluster):
    sec = await create_secret(cluster, "db_pw")
    cfg = (await cluster.control.CreateConfig(cpb.CreateConfigRequest(spec=pb.ConfigSpec(name="app", data=b"port=80")))).config
    s = with_secret("web", "db_pw")
    s.container.configs.add(config_name="app")
    svc = (await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))).service
    ref = svc.spec.container.secrets[0]
    assert (ref.secret_id, ref.secret_name, ref.file.name, ref.file.mode) == (sec.id, "db_pw", "db_pw", 0o444)
    assert svc.spec.container.configs[0].config_id == cfg.id
    msg = await refused(cluster.control.RemoveSecret(cpb.RemoveSecretRequest(secret_id="db_pw")), grpc.StatusCode.FAILED_PRECONDITION)
    assert msg == "secret 'db_pw' is in use by the following service: web"
    msg = await refused(cluster.control.RemoveConfig(cpb.RemoveConfigRequest(config_id=cfg.id)), grpc.StatusCode.FAILED_PRECONDITION)
    assert msg == "config 'app' is in use by the following service: web"
    assert (await cluster.control.GetConfig(cpb.GetConfigRequest(config_id="app"))).config.spec.data == b"port=80"
    await cluster.control.RemoveService(cpb.RemoveServiceRequest(service_id="web"))
    await cluster.control.RemoveSecret(cpb.RemoveSecretRequest(secret_id=sec.id[:8]))  # by id prefix
    await cluster.control.RemoveConfig(cpb.RemoveConfigRequest(config_id="app"))
    assert not (await cluster.control.ListSecrets(cpb.ListSecretsRequest())).secrets
    assert not (await cluster.control.ListConfigs(cpb.ListConfigsRequest())).configs
    await refused(cluster.control.GetSecret(cpb.GetSecretRequest(secret_id="db_pw")), grpc.StatusCode.NOT_FOUND)


def record_received(agent) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Every secret the agent is ever sent (the attacker's view of a stolen worker's memory)."""
    seen: dict[str, bytes] = {}
    apply = agent.files.apply

    def spy(a: dpb.Assignments) -> None:
        seen.update({f.id: f.data for f in a.secrets})
        apply(a)

    agent.files.apply = spy
    return seen


async def test_only_the_node_running_the_task_receives_the_secret_and_drops_it_once_running(cluster):
    a1, a2 = await cluster.add_agent("w1"), await cluster.add_agent("w2")
    got = {"w1": record_received(a1), "w2": record_received(a2)}
    sec = await create_secret(cluster, "db_pw")
    s = with_secret("web", "db_pw")
    s.placement.constraints.append("node.hostname==w2")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    await cluster.until(lambda: running_n(cluster, "web", 1))
    assert got["w2"] == {sec.id: CLEAR}
    assert got["w1"] == {}  # w1 runs no task using it: a stolen w1 yields nothing
    await cluster.until(lambda: _holds_none(a2))  # the task runs: its node keeps no copy


async def _holds_none(agent) -> bool:  # type: ignore[no-untyped-def]
    return not agent.files.held("secret")


async def test_update_adds_and_removes_references(cluster):
    await create_secret(cluster, "a")
    await create_secret(cluster, "b")
    svc = (await cluster.control.CreateService(cpb.CreateServiceRequest(spec=with_secret("web", "a")))).service
    new = pb.ServiceSpec()
    new.CopyFrom(svc.spec)
    new.container.secrets.add(secret_name="b", file=pb.FileTarget(name="b"))
    new.container.secrets.add(secret_name="nope")
    req = cpb.UpdateServiceRequest(service_id="web", version=svc.meta.version, spec=new)
    assert "secret not found: nope" in await refused(cluster.control.UpdateService(req), grpc.StatusCode.INVALID_ARGUMENT)
    del new.container.secrets[-1]
    out = (await cluster.control.UpdateService(cpb.UpdateServiceRequest(service_id="web", version=svc.meta.version, spec=new))).service
    assert [r.secret_name for r in out.spec.container.secrets] == ["a", "b"]


async def test_no_log_line_carries_secret_data(cluster):
    """Everything the manager and the agent log while a secret is created, sent and used."""
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await cluster.add_agent("w1")
        await create_secret(cluster, "db_pw")
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=with_secret("web", "db_pw")))
        await cluster.until(lambda: running_n(cluster, "web", 1))
    assert logs and not [e for e in logs if CLEAR.decode() in repr(e)]


async def test_secrets_larger_than_grpcs_default_message_reach_the_node(cluster):
    """Ten secrets of almost 500 KiB for one task: one assignment message of ~5 MiB (gRPC's default cap is 4 MiB)."""
    agent = await cluster.add_agent("w1")
    got = record_received(agent)
    s = spec("big", replicas=1)
    for i in range(10):
        await create_secret(cluster, f"big{i}", bytes([65 + i]) * (500 * 1024 - 1))
        s.container.secrets.add(secret_name=f"big{i}")
    await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    await cluster.until(lambda: running_n(cluster, "big", 1), timeout=20)
    assert sorted(len(v) for v in got.values()) == [500 * 1024 - 1] * 10


async def test_an_rm_that_read_the_services_before_a_create_added_a_reference_is_refused(cluster, monkeypatch):
    """rm reads the services (nobody uses the secret), then ``svc create --secret`` commits, then rm deletes:
    the delete's compare (no service changed since the read) fails, rm reads again and refuses."""
    await create_secret(cluster, "pw")
    read = Kind.list_at
    created: list[pb.Service] = []

    async def read_then_create(self, store):  # type: ignore[no-untyped-def]
        out = await read(self, store)
        if not created:  # between rm's first read and its delete
            created.append((await cluster.control.CreateService(cpb.CreateServiceRequest(spec=with_secret("web", "pw")))).service)
        return out

    monkeypatch.setattr(Kind, "list_at", read_then_create)
    rm = cluster.control.RemoveSecret(cpb.RemoveSecretRequest(secret_id="pw"))
    assert "in use by the following service: web" in await refused(rm, grpc.StatusCode.FAILED_PRECONDITION)
    assert created and await objects.secrets.get(cluster.manager.store, created[0].spec.container.secrets[0].secret_id)


async def test_a_create_that_checked_its_references_before_an_rm_is_refused(cluster):
    """``svc create --secret`` resolves the reference, then rm commits, then the create writes: its compare
    (the secret exists) fails and it is refused as if the secret had never been there; nothing is written."""
    sec = await create_secret(cluster, "pw")
    api = SecretAPI._check_refs
    removed: list[str] = []

    async def check_then_rm(self, spec, context):  # type: ignore[no-untyped-def]
        await api(self, spec, context)
        if not removed:
            await cluster.control.RemoveSecret(cpb.RemoveSecretRequest(secret_id="pw"))
            removed.append("pw")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SecretAPI, "_check_refs", check_then_rm)
        create = cluster.control.CreateService(cpb.CreateServiceRequest(spec=with_secret("web", "pw")))
        assert await refused(create, grpc.StatusCode.INVALID_ARGUMENT) == "invalid service spec: secret not found: pw"
    assert removed and await objects.secrets.get(cluster.manager.store, sec.id) is None
    assert not await objects.services.list(cluster.manager.store)


async def test_an_update_adding_a_config_races_its_rm_and_one_of_them_loses(cluster, monkeypatch):
    """The same race through ``svc update --config-add``: the update commits between rm's read and its delete."""
    await cluster.control.CreateConfig(cpb.CreateConfigRequest(spec=pb.ConfigSpec(name="conf", data=b"x=1")))
    svc = (await cluster.control.CreateService(cpb.CreateServiceRequest(spec=spec("web", replicas=1)))).service
    read = Kind.list_at
    updated: list[pb.Service] = []

    async def read_then_update(self, store):  # type: ignore[no-untyped-def]
        out = await read(self, store)
        if not updated:
            new = pb.ServiceSpec()
            new.CopyFrom(svc.spec)
            new.container.configs.add(config_name="conf", file=pb.FileTarget(name="/etc/conf"))
            req = cpb.UpdateServiceRequest(service_id=svc.id, version=svc.meta.version, spec=new)
            updated.append((await cluster.control.UpdateService(req)).service)
        return out

    monkeypatch.setattr(Kind, "list_at", read_then_update)
    rm = cluster.control.RemoveConfig(cpb.RemoveConfigRequest(config_id="conf"))
    assert "in use by the following service: web" in await refused(rm, grpc.StatusCode.FAILED_PRECONDITION)
    (stored,) = await objects.services.list(cluster.manager.store)
    cfg = stored.obj.spec.container.configs[0].config_id
    assert cfg and await objects.configs.get(cluster.manager.store, cfg) is not None


async def test_a_node_whose_tasks_need_more_than_64_mib_of_secrets_gets_them_all(cluster):
    """A node's worker takes gRPC messages of up to 64 MiB: the secrets its tasks need are sent in as many
    messages as it takes (each task once its files are there), not in one message the node must refuse."""
    per_task, services = 28, 5  # 28 x 500 KiB = 14 MiB a task (under the runtime's 16 MiB a container)
    big = b"x" * (secretspec.MAX_SIZE - 1)
    for i in range(per_task * services):
        await create_secret(cluster, f"s{i}", data=big[:-8] + f"{i:08d}".encode())
    for n in range(services):
        s = spec(f"svc{n}", replicas=1)
        for i in range(per_task * n, per_task * (n + 1)):
            s.container.secrets.add(secret_name=f"s{i}", file=pb.FileTarget(name=f"s{i}"))
        await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))
    agent = await cluster.add_agent("w1")  # its first full set: 5 tasks and 70 MiB of secrets at once
    got = record_received(agent)
    for n in range(services):
        await cluster.until(lambda n=n: running_n(cluster, f"svc{n}", 1), timeout=60)
    assert len(got) == per_task * services and all(len(v) == len(big) for v in got.values())


async def test_a_task_whose_secrets_would_not_fit_its_container_is_refused_when_stored(cluster, etcd_store):
    """34 references of almost 500 KiB are 17 MiB for every task: more than a container's start files take
    (16 MiB). The spec is refused with one message, and nothing is written; 32 of them are fine."""
    big = b"y" * (secretspec.MAX_SIZE - 1)
    for i in range(34):
        await create_secret(cluster, f"b{i}", data=big)
    s = spec("fat", replicas=1)
    for i in range(34):
        s.container.secrets.add(secret_name=f"b{i}", file=pb.FileTarget(name=f"b{i}"))
    err = await refused(cluster.control.CreateService(cpb.CreateServiceRequest(spec=s)), grpc.StatusCode.INVALID_ARGUMENT)
    assert err == f"invalid service spec: the secrets and configs of one task total {34 * len(big)} bytes; at most 16777216 bytes (16 MiB) fit in its container"
    assert not await objects.services.list(cluster.manager.store)
    del s.container.secrets[32:]
    assert (await cluster.control.CreateService(cpb.CreateServiceRequest(spec=s))).service.id
