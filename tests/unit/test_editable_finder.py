"""The light editable finder `make setup` writes over setuptools' (deploy/editable.py): it maps every package
folder, loads nothing at interpreter start, and refuses a layout it cannot serve."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("editable_tool", ROOT / "deploy" / "editable.py")
assert spec and spec.loader
editable = importlib.util.module_from_spec(spec)
spec.loader.exec_module(editable)

SETUPTOOLS_STYLE = """from importlib.machinery import PathFinder
MAPPING: dict[str, str] = {MAPPING}
NAMESPACES: dict[str, list[str]] = {NAMESPACES}
"""


def finder_file(tmp_path: Path, mapping: dict[str, str], namespaces: dict | None = None) -> Path:
    f = tmp_path / "__editable___shoal_0_1_0_finder.py"
    f.write_text(SETUPTOOLS_STYLE.replace("{MAPPING}", repr(mapping)).replace("{NAMESPACES}", repr(namespaces or {})))
    return f


def test_the_rendered_finder_imports_the_mapped_folders(tmp_path: Path) -> None:
    pkgs = tmp_path / "repo"
    for folder, body in (("top", "X = 1"), ("sub", "Y = 2")):
        (pkgs / folder).mkdir(parents=True)
        (pkgs / folder / "__init__.py").write_text(body)
    mapping = {"top": str(pkgs / "top"), "top.sub": str(pkgs / "sub")}
    text = editable.render(editable.read_mapping(finder_file(tmp_path, mapping)))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "lightfinder.py").write_text(text)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import lightfinder; lightfinder.install();"
             " import top.sub, json; print(json.dumps([top.X, top.sub.Y, top.sub.__file__]))")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "site")], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert json.loads(out.stdout) == [1, 2, str(pkgs / "sub" / "__init__.py")]
    assert editable.read_mapping(tmp_path / "site" / "lightfinder.py") == mapping  # running it again reads its own


def test_a_folder_not_named_as_its_package_or_a_namespace_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="needs the folder named 'sub'"):
        editable.render({"top.sub": "/repo/elsewhere"})
    with pytest.raises(SystemExit, match="namespace"):
        editable.read_mapping(finder_file(tmp_path, {"top": "/repo/top"}, {"ns": []}))


def test_this_venv_starts_without_the_heavy_imports_and_finds_every_folder() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    finders = list(site.glob("__editable___shoal_*_finder.py"))
    if not finders or "ShoalEditableFinder" not in finders[0].read_text():
        pytest.skip(reason="this venv is not `make setup`'s editable install (a wheel, or setuptools' finder)")
    probe = ("import sys; heavy = sorted({'pathlib', 'urllib.parse', 'fnmatch', 'importlib.util'} & set(sys.modules));"
             " import shoal.manager, shoal.worker, shoal.runtime, shoal.proto, json;"
             " print(json.dumps([heavy, [m.__file__ for m in (shoal.manager, shoal.worker, shoal.runtime, shoal.proto)]]))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", check=True)
    heavy, files = json.loads(out.stdout)
    assert heavy == []
    assert files == [str(ROOT / d / "__init__.py") for d in ("manager", "worker", "runtime", "proto")]
