"""`shoal image ls|inspect|rm` and `shoal volume create|ls|inspect|rm` on a real node-local runtime.

docker's columns and JSON field names, lookups by tag, id and id prefix, untagging one of two tags
before removing, removal refused while a container (even a stopped one) uses an image or a volume,
and each failure one line among the items that succeeded.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shoal.cli import containers_common
from shoal.cli.main import main
from tests.fixtures import busybox_image

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the node-local runtime extracts layers and runs containers"),
    pytest.mark.skipif(not os.path.exists(busybox_image.BUSYBOX), reason="needs Debian's busybox-static"),
]


class Node:
    def __init__(self, root: Path) -> None:
        self.root, self.runner = root, CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        argv = [args[0], "--root", str(self.root), *args[1:]] if args[0] == "run" else [*args, "--root", str(self.root)]
        res = self.runner.invoke(main, argv)
        assert res.exit_code == code, (args, res.exit_code, res.stdout, res.stderr, res.exception)
        return res


@pytest.fixture
def node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setattr(containers_common, "CGROUP_PARENT", f"shoal-test-{uuid.uuid4().hex[:8]}")
    n = Node(tmp_path / "root")
    yield n
    ids = n("ps", "-aq", "--no-trunc").stdout.split()
    if ids:
        n("rm", "-f", *ids)


@pytest.fixture
def loaded(node: Node, tmp_path: Path) -> Node:
    tar = tmp_path / "bb.tar"
    busybox_image.build(str(tar))
    node("image", "load", "-i", str(tar))
    return node


def test_image_ls_columns_quiet_and_full_ids(loaded: Node):
    rows = loaded("image", "ls").stdout.splitlines()
    assert rows[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    repo, tag, short = rows[1].split()[:3]
    assert (repo, tag, len(short)) == ("busybox", "latest", 12)
    assert loaded("image", "ls", "-q").stdout.strip() == short
    full = loaded("image", "ls", "-q", "--no-trunc").stdout.strip()
    assert full.startswith("sha256:") and full[7:19] == short


def test_image_inspect_by_tag_and_id_prefix_has_dockers_fields(loaded: Node):
    short = loaded("image", "ls", "-q").stdout.strip()
    by_tag = json.loads(loaded("image", "inspect", "busybox").stdout)
    by_id = json.loads(loaded("image", "inspect", short).stdout)
    # a shorter hex could be a repository name: "sha256:" makes it an id prefix
    by_prefix = json.loads(loaded("image", "inspect", f"sha256:{short[:6]}").stdout)
    assert by_tag == by_id == by_prefix and len(by_tag) == 1
    img = by_tag[0]
    assert img["RepoTags"] == ["busybox:latest"] and img["RootFS"]["Type"] == "layers" and img["RootFS"]["Layers"]
    assert img["Id"].startswith("sha256:" + short) and img["Size"] > 0


def test_inspecting_an_unknown_image_prints_the_known_ones_and_fails_once(loaded: Node):
    res = loaded("image", "inspect", "busybox", "nothere:1", code=1)
    assert len(json.loads(res.stdout)) == 1
    assert "nothere" in res.stderr and res.stderr.count("\n") == 1


def test_an_image_used_by_a_stopped_container_cannot_be_removed(loaded: Node):
    loaded("run", "--name", "done", "busybox", "true")
    res = loaded("image", "rm", "busybox", code=1)
    assert "conflict: unable to remove image busybox" in res.stderr and "is using it" in res.stderr
    loaded("rm", "done")
    assert "Untagged: busybox:latest" in loaded("image", "rm", "busybox").stdout
    assert loaded("image", "ls", "-q").stdout == ""


def test_an_image_with_two_tags_is_untagged_first(node: Node, tmp_path: Path):
    for tag in ("busybox:latest", "busybox:stable"):
        tar = tmp_path / f"{tag.replace(':', '-')}.tar"
        busybox_image.build(str(tar), tag=tag)
        node("image", "load", "-i", str(tar))
    rows = node("image", "ls").stdout.splitlines()[1:]
    assert sorted(r.split()[1] for r in rows) == ["latest", "stable"] and len({r.split()[2] for r in rows}) == 1
    out = node("image", "rm", "busybox:stable").stdout
    assert "Untagged: busybox:stable" in out and "Deleted" not in out
    assert [r.split()[1] for r in node("image", "ls").stdout.splitlines()[1:]] == ["latest"]


def test_volumes_are_created_listed_inspected_and_removed(node: Node):
    assert node("volume", "create", "data").stdout == "data\n"
    anon = node("volume", "create").stdout.strip()
    assert len(anon) == 64, "an unnamed volume gets an id"
    assert sorted(node("volume", "ls", "-q").stdout.split()) == sorted(["data", anon])
    table = node("volume", "ls").stdout.splitlines()
    assert table[0].split() == ["DRIVER", "VOLUME", "NAME"] and any(r.split() == ["local", "data"] for r in table[1:])
    (vol,) = json.loads(node("volume", "inspect", "data").stdout)
    assert vol["Name"] == "data" and vol["Driver"] == "local" and vol["Scope"] == "local" and vol["UsedBy"] == []
    assert Path(vol["Mountpoint"]).is_dir() and str(node.root) in vol["Mountpoint"]
    assert node("volume", "rm", "data", anon).stdout.split() == ["data", anon]
    assert node("volume", "ls", "-q").stdout == ""


def test_a_volume_in_use_is_refused_naming_its_containers(loaded: Node):
    cid = loaded("run", "-d", "--name", "writer", "-v", "keep:/data", "busybox", "sleep", "1000").stdout.strip()
    (vol,) = json.loads(loaded("volume", "inspect", "keep").stdout)
    assert vol["UsedBy"] == [cid]
    res = loaded("volume", "rm", "keep", code=1)
    assert res.stderr.strip() == f"Error: remove keep: volume is in use - [{cid}]"
    loaded("rm", "-f", "writer")
    assert loaded("volume", "rm", "keep").stdout == "keep\n"


def test_removing_several_volumes_reports_each_failure_and_removes_the_rest(node: Node):
    node("volume", "create", "a")
    res = node("volume", "rm", "ghost", "a", code=1)
    assert res.stdout == "a\n" and "ghost" in res.stderr
    assert node("volume", "ls", "-q").stdout == ""
