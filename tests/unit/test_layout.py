"""The package layout: every folder that is a package is installed under its shoal.* name."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"


def test_generated_protocol_code_is_fresh():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "proto" / "gen.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
