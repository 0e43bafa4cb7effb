"""rootfs.api_dirs_in_layers: when PID 1 may skip making /proc, /dev and /sys in the overlay."""

from __future__ import annotations

from pathlib import Path

from shoal.runtime.launcher.child import rootfs


def _layer(base: Path, name: str, dirs: tuple[str, ...] = (), files: tuple[str, ...] = ()) -> str:
    layer = base / name
    layer.mkdir()
    for d in dirs:
        (layer / d).mkdir()
    for f in files:
        (layer / f).write_text("")
    return str(layer)


def test_all_three_dirs_in_some_layer(tmp_path: Path) -> None:
    top = _layer(tmp_path, "top", dirs=("proc",))
    bottom = _layer(tmp_path, "bottom", dirs=("dev", "sys", "proc"))
    assert rootfs.api_dirs_in_layers([top, bottom])


def test_a_missing_dir_or_a_non_dir_on_top_means_the_child_checks(tmp_path: Path) -> None:
    bottom = _layer(tmp_path, "bottom", dirs=("dev", "sys", "proc"))
    assert not rootfs.api_dirs_in_layers([_layer(tmp_path, "partial", dirs=("dev", "sys"))])
    assert not rootfs.api_dirs_in_layers([_layer(tmp_path, "file", files=("proc",)), bottom])
    link = _layer(tmp_path, "link")
    (Path(link) / "sys").symlink_to("/")
    assert not rootfs.api_dirs_in_layers([link, bottom])
