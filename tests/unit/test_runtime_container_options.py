"""The runtime's docker-flag options checked once at the client, and the launcher's pure pieces for them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoal.runtime import ConfigError, ContainerConfig
from shoal.runtime.launcher import procspec, users
from shoal.runtime.launcher.child import usermounts
from shoal.runtime.spec import ContainerSpec, validate


def cfg(**kw: object) -> ContainerConfig:
    return ContainerConfig(id="c1", image="host", args=["true"], **kw)  # type: ignore[arg-type]


def test_options_are_checked_and_kept() -> None:
    spec = validate(cfg(read_only=True, ulimits=[{"name": "nofile", "soft": 10, "hard": 20}], sysctls={"net.core.somaxconn": "64"},
                        group_add=["audio", "44"], stop_signal="USR1"))  # fmt: skip
    assert (spec.read_only, spec.ulimits, spec.sysctls, spec.group_add, spec.stop_signal) == (
        True, [["nofile", 10, 20]], {"net.core.somaxconn": "64"}, ["audio", "44"], 10)
    assert validate(cfg()).stop_signal == 15
    assert ContainerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"sysctls": {"kernel.core_pattern": "|/tmp/x"}}, "not allowed"),
        ({"sysctls": {"net/../../kernel/core_pattern": "x"}}, "dot-separated"),
        ({"ulimits": [{"name": "nofile", "soft": 5, "hard": 1}]}, "above the hard limit"),
        ({"ulimits": [{"name": "nofile"}]}, "invalid ulimits"),
        ({"group_add": ["a:b"]}, "invalid group"),
        ({"stop_signal": "SIGNOPE"}, "invalid signal"),
        ({"mounts": [{"type": "volume", "source": "{{.Task.Slot}}", "target": "/x"}]}, "templates are only expanded for services"),
    ],
)
def test_bad_options_never_reach_the_launcher(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(cfg(**kw))


def test_an_anonymous_volume_is_allowed() -> None:
    assert validate(cfg(mounts=[{"type": "volume", "target": "/data"}])).mounts[0]["source"] == ""


def test_group_add_takes_names_from_the_rootfs_group_file_or_gids() -> None:
    group = "root:x:0:\naudio:x:29:\nvideo:x:44:app\n"
    assert users.add_groups((44,), ["audio", "100"], group, 1000) == (29, 44, 100)
    assert users.add_groups((44,), [], group, 1000) == (44,)
    with pytest.raises(ConfigError, match="unable to find group nope"):
        users.add_groups((), ["nope"], group, 0)


def test_ulimits_become_setrlimit_arguments() -> None:
    import resource

    assert procspec.rlimits([["nofile", 10, 20], ["core", -1, -1], ["locks", 1, 2]]) == (
        (resource.RLIMIT_NOFILE, 10, 20), (resource.RLIMIT_CORE, resource.RLIM_INFINITY, resource.RLIM_INFINITY), (10, 1, 2))


def test_an_empty_volume_gets_a_copy_of_the_image_directory(tmp_path: Path) -> None:
    src, dst = tmp_path / "image-dir", tmp_path / "volume"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "sub" / "f").write_text("hello")
    os.chmod(src / "sub" / "f", 0o640)
    os.symlink("/etc/passwd", src / "link")  # copied as a link, never followed
    os.mkfifo(src / "fifo")
    os.chmod(src, 0o750)
    assert usermounts.copy_into_empty(str(src), str(dst))
    assert (dst / "sub" / "f").read_text() == "hello"
    assert (os.stat(dst / "sub" / "f").st_mode & 0o777) == 0o640
    assert os.readlink(dst / "link") == "/etc/passwd"
    assert not (dst / "fifo").exists()
    assert os.stat(dst).st_mode & 0o777 == 0o750
    (src / "new").write_text("later")
    assert not usermounts.copy_into_empty(str(src), str(dst)), "a volume with content is never written again"
    assert not (dst / "new").exists()
