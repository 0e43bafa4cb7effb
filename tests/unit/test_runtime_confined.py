"""Writing inside one layer directory: every path stays beneath the layer's root, whatever symlinks it holds.

Run twice: with openat2 (RESOLVE_BENEATH, the kernel refuses an escape) and with the fallback walk of
kernels before 5.6 (one component at a time, every symlink refused). Only the test's own tmp dirs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.runtime.image.confined import Escape, LayerRoot, lstat_at, remove_at, set_attrs


@pytest.fixture(params=["openat2", "walk"])
def layer(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[LayerRoot, Path]]:
    root = tmp_path / "layer"
    root.mkdir()
    (tmp_path / "outside").mkdir()
    lr = LayerRoot(str(root))
    lr._openat2 = request.param == "openat2"
    try:
        yield lr, root
    finally:
        lr.close()


def _path_of(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_a_missing_directory_is_made_inside_the_layer(layer):
    lr, root = layer
    fd = lr.dir("usr/local/bin")
    try:
        assert _path_of(fd) == str(root / "usr/local/bin")
        assert stat.S_IMODE((root / "usr/local").stat().st_mode) == 0o755
    finally:
        os.close(fd)


def test_an_existing_directory_is_opened_not_made_again(layer):
    lr, root = layer
    (root / "etc").mkdir()
    (root / "etc" / "keep").write_text("x")
    fd = lr.dir("etc", create=False)
    os.close(fd)
    assert (root / "etc" / "keep").read_text() == "x"


def test_without_create_a_missing_directory_is_an_error(layer):
    lr, root = layer
    with pytest.raises(FileNotFoundError):
        lr.dir("nope/deeper", create=False)
    assert not (root / "nope").exists()


def test_the_empty_path_is_the_root_itself(layer):
    lr, root = layer
    fd = lr.dir("")
    try:
        assert _path_of(fd) == str(root)
    finally:
        os.close(fd)


def test_an_absolute_symlink_out_of_the_layer_is_refused(layer, tmp_path):
    lr, root = layer
    (root / "evil").symlink_to(tmp_path / "outside")
    with pytest.raises(Escape):
        lr.dir("evil/planted")
    assert list((tmp_path / "outside").iterdir()) == [], "nothing was made outside the layer"


def test_a_dotdot_symlink_past_the_root_is_refused(layer, tmp_path):
    lr, root = layer
    (root / "up").symlink_to("../outside")
    with pytest.raises(Escape):
        lr.dir("up")
    assert list((tmp_path / "outside").iterdir()) == []


def test_a_symlink_in_the_middle_of_a_path_is_refused_too(layer, tmp_path):
    lr, root = layer
    (root / "a").mkdir()
    (root / "a" / "b").symlink_to(tmp_path / "outside")
    with pytest.raises(Escape):
        lr.dir("a/b/c")
    assert list((tmp_path / "outside").iterdir()) == []


def test_an_escape_is_an_image_load_error_naming_the_path(layer, tmp_path):
    from shoal.runtime.errors import ImageLoadError

    lr, root = layer
    (root / "evil").symlink_to(tmp_path / "outside")
    with pytest.raises(ImageLoadError, match="evil"):
        lr.dir("evil/x")


def test_a_dangling_symlink_is_not_followed_to_make_a_directory(layer, tmp_path):
    lr, root = layer
    (root / "dangling").symlink_to(tmp_path / "outside" / "made-by-layer")
    with pytest.raises((Escape, FileExistsError)):
        lr.dir("dangling")
    assert not (tmp_path / "outside" / "made-by-layer").exists()


def test_the_layer_root_is_usable_as_a_context_manager(tmp_path):
    (tmp_path / "l").mkdir()
    with LayerRoot(str(tmp_path / "l")) as lr:
        fd = lr.dir("x")
        os.close(fd)
    with pytest.raises(OSError):
        os.fstat(lr.fd)  # closed on exit
    assert (tmp_path / "l" / "x").is_dir()


# -- lstat_at / remove_at / set_attrs ----------------------------------------------------------------------


def test_lstat_at_does_not_follow_and_says_none_for_absent(tmp_path):
    (tmp_path / "link").symlink_to("/etc/passwd")
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        st = lstat_at(fd, "link")
        assert st is not None and stat.S_ISLNK(st.st_mode)
        assert lstat_at(fd, "absent") is None
    finally:
        os.close(fd)


def test_remove_at_unlinks_a_symlink_and_leaves_its_target(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "precious").write_text("keep")
    (tmp_path / "link").symlink_to(target)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert remove_at(fd, "link") is False
    finally:
        os.close(fd)
    assert not (tmp_path / "link").is_symlink()
    assert (target / "precious").read_text() == "keep"


def test_remove_at_removes_a_whole_tree_without_following_links_inside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f").write_text("x")
    (tree / "sub" / "out").symlink_to(outside)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert remove_at(fd, "tree") is False
        assert remove_at(fd, "absent") is False
    finally:
        os.close(fd)
    assert not tree.exists()
    assert (outside / "precious").read_text() == "keep"


def test_remove_at_keeps_a_real_directory_when_asked(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "child").write_text("x")
    (tmp_path / "f").write_text("x")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert remove_at(fd, "d", keep_dir=True) is True
        assert remove_at(fd, "f", keep_dir=True) is False  # a file is replaced all the same
    finally:
        os.close(fd)
    assert (tmp_path / "d" / "child").exists() and not (tmp_path / "f").exists()


def test_set_attrs_sets_mode_then_times_and_leaves_a_symlinks_target_alone(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "target").write_text("t")
    os.chmod(tmp_path / "target", 0o600)
    (tmp_path / "l").symlink_to(tmp_path / "target")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    uid, gid = os.getuid(), os.getgid()
    try:
        set_attrs(fd, "f", 0o4751, uid, gid, 1_000_000.0, is_link=False)
        set_attrs(fd, "l", 0o777, uid, gid, 2_000_000.0, is_link=True)
    finally:
        os.close(fd)
    st = (tmp_path / "f").stat()
    assert stat.S_IMODE(st.st_mode) == 0o4751 and st.st_mtime == 1_000_000.0
    assert os.lstat(tmp_path / "l").st_mtime == 2_000_000.0
    assert stat.S_IMODE((tmp_path / "target").stat().st_mode) == 0o600, "the link's target kept its mode"
