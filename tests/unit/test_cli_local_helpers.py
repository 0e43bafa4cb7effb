"""What the node-local container commands show and how they find a container, on plain data; and
``join-token`` against a fake manager (show, quiet, rotate: docker's words and the command to run).
"""

from __future__ import annotations

import re

import pytest

from shoal.cli import containers_common as cc
from shoal.proto import control_pb2, types_pb2
from shoal.runtime import ContainerError, ContainerInfo, ContainerNotFound
from tests.fixtures.cli_fakes import FakeStub, run

NOW = 1_000_000.0


def info(cid: str, name: str = "", status: str = "running", exit_code: int | None = None,
         started: float | None = NOW - 5, finished: float | None = None) -> ContainerInfo:
    labels = {cc.NAME_LABEL: name} if name else {}
    return ContainerInfo(id=cid, image="busybox", status=status, pid=1, exit_code=exit_code, oom_killed=False,
                         created_at=NOW - 10, started_at=started, finished_at=finished, labels=labels,
                         log_path="/l", cgroup="p/" + cid)  # fmt: skip


A = "a" * 64
AB = "ab" + "c" * 62
B = "b" * 64
BOX = [info(A, "web"), info(AB, "db"), info(B)]


def test_a_container_is_found_by_name_id_or_unique_prefix():
    assert cc.find(BOX, "web").id == A
    assert cc.find(BOX, B).id == B
    assert cc.find(BOX, "abc").id == AB
    assert cc.find(BOX, "b").id == B


def test_an_ambiguous_prefix_and_an_unknown_reference_are_errors_naming_them():
    with pytest.raises(ContainerError, match="multiple containers match id prefix a"):
        cc.find(BOX, "a")
    with pytest.raises(ContainerNotFound, match="No such container: nope"):
        cc.find(BOX, "nope")
    with pytest.raises(ContainerNotFound):
        cc.find(BOX, "")


def test_a_name_wins_over_an_id_prefix():
    boxes = [info(A, "bb"), info(B, "other")]
    assert cc.find(boxes, "bb").id == A, "the name, not the prefix of " + B[:2]


def test_a_container_without_a_name_label_is_named_by_its_short_id():
    assert cc.name_of(info(B)) == B[:12]
    assert cc.name_of(info(A, "web")) == "web"


def test_generated_names_avoid_the_taken_ones_and_ids_are_64_hex():
    taken = {cc.new_name(set()) for _ in range(50)}
    fresh = cc.new_name(taken)
    assert fresh not in taken and "_" in fresh
    cid = cc.new_id()
    assert len(cid) == 64 and int(cid, 16) >= 0
    assert cc.new_id() != cid


def test_generated_names_draw_every_word_and_number():
    draws = [cc._below(10) for _ in range(2000)]
    assert set(draws) == set(range(10))
    parts = [re.fullmatch(r"([a-z]+)_([a-z]+)(\d+)", cc.new_name(set())).groups() for _ in range(500)]
    assert {p[0] for p in parts} == set(cc._ADJ) and {p[1] for p in parts} == set(cc._NOUN)
    assert all(0 <= int(p[2]) < 100 for p in parts) and len({p[2] for p in parts}) > 50


@pytest.mark.parametrize(("box", "text"), [
    (info(A, status="running", started=NOW - 5), "Up 5 seconds"),
    (info(A, status="running", started=NOW - 3600), "Up About an hour"),
    (info(A, status="exited", exit_code=0, finished=NOW - 120), "Exited (0) 2 minutes ago"),
    (info(A, status="exited", exit_code=137, finished=NOW - 0.2), "Exited (137) less than a second ago"),
    (info(A, status="exited", exit_code=None, finished=NOW - 30), "Exited (?) 30 seconds ago"),
    (info(A, status="created", started=None), "Created"),
])  # fmt: skip
def test_the_status_column_reads_as_dockers(box, text):
    assert cc.status_text(box, now=NOW) == text


def test_ago_never_goes_negative():
    assert cc.ago_text(NOW + 50, now=NOW) == "Less than a second ago"
    assert cc.ago_text(NOW - 61, now=NOW) == "About a minute ago"


@pytest.mark.parametrize(("n", "text"), [(512, "512B"), (4_050_000, "4.05MB"), (1_000, "1kB"), (999, "999B"),
                                         (1.5e12, "1.5TB"), (2.5e15, "2.5e+03TB")])
def test_sizes_in_decimal_units_with_three_digits(n, text):
    assert cc.size_text(n) == text


@pytest.mark.parametrize(("n", "text"), [(512, "512B"), (1536 * 1024, "1.5MiB"), (64 << 20, "64MiB"), (1024, "1KiB")])
def test_memory_in_binary_units(n, text):
    assert cc.bytes_text(n) == text


def test_container_commands_need_root(monkeypatch):
    import click

    monkeypatch.setattr(cc.os, "geteuid", lambda: 1000)

    @cc.run_async
    async def cmd() -> None:
        raise AssertionError("must not run")

    with pytest.raises(click.ClickException, match="containers need root"):
        cmd()


def test_a_runtime_error_becomes_one_error_line(monkeypatch):
    import click

    monkeypatch.setattr(cc.os, "geteuid", lambda: 0)

    @cc.run_async
    async def cmd() -> None:
        raise ContainerNotFound("No such container: x")

    with pytest.raises(click.ClickException, match="No such container: x"):
        cmd()


def test_blocking_commands_have_the_same_rules(monkeypatch):
    import click

    @cc.run_sync
    def cmd(fail: bool) -> str:
        if fail:
            raise ContainerNotFound("No such container: y")
        return "ran"

    monkeypatch.setattr(cc.os, "geteuid", lambda: 1000)
    with pytest.raises(click.ClickException, match="containers need root"):
        cmd(False)
    monkeypatch.setattr(cc.os, "geteuid", lambda: 0)
    assert cmd(False) == "ran"
    with pytest.raises(click.ClickException, match="No such container: y"):
        cmd(True)


# -- join-token --------------------------------------------------------------------------------------------------


class TokenFake(FakeStub):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = {"worker": "SHOAL-1-digest-worker0", "manager": "SHOAL-1-digest-manager0"}
        self.managers = ["10.0.0.1:4242"]

    def GetCluster(self, req: control_pb2.GetClusterRequest) -> control_pb2.GetClusterResponse:
        self._record("GetCluster", req)
        c = types_pb2.Cluster(worker_token=self.tokens["worker"], manager_token=self.tokens["manager"])
        return control_pb2.GetClusterResponse(cluster=c, managers=self.managers)

    def RotateJoinToken(self, req: control_pb2.RotateJoinTokenRequest) -> control_pb2.RotateJoinTokenResponse:
        self._record("RotateJoinToken", req)
        self.tokens[req.role] = self.tokens[req.role][:-1] + "1"
        return control_pb2.RotateJoinTokenResponse()


def test_join_token_shows_the_command_to_run():
    r = run(TokenFake(), "join-token", "worker")
    assert r.exit_code == 0
    assert r.stdout == ("To add a worker to this cluster, run the following command:\n\n"
                        "    shoal worker --join 10.0.0.1:4242 --token SHOAL-1-digest-worker0\n\n")


def test_a_manager_join_command_asks_for_the_etcd_endpoints():
    r = run(TokenFake(), "join-token", "manager")
    assert "shoal manager --join 10.0.0.1:4242 --token SHOAL-1-digest-manager0 --etcd <etcd endpoints>" in r.stdout


def test_quiet_prints_the_token_alone():
    assert run(TokenFake(), "join-token", "-q", "manager").stdout == "SHOAL-1-digest-manager0\n"


def test_rotate_replaces_the_token_and_shows_the_new_one():
    fake = TokenFake()
    r = run(fake, "join-token", "--rotate", "worker")
    assert r.stdout.startswith("Successfully rotated worker join token.\n")
    assert "SHOAL-1-digest-worker1" in r.stdout and fake.called("RotateJoinToken")[0].role == "worker"
    assert fake.tokens["manager"].endswith("0"), "the other token is untouched"
    assert run(fake, "join-token", "-q", "--rotate", "worker").stdout == "SHOAL-1-digest-worker1\n", "quiet: the token alone"
    assert len(fake.called("RotateJoinToken")) == 2


def test_without_a_known_manager_address_a_placeholder_is_shown():
    fake = TokenFake()
    fake.managers = []
    assert "--join <manager-address>" in run(fake, "join-token", "worker").stdout


def test_an_unknown_role_is_a_usage_error_before_any_call():
    fake = TokenFake()
    r = run(fake, "join-token", "admin")
    assert r.exit_code == 2 and fake.calls == []
