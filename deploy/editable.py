#!/usr/bin/env python3
"""Make the editable install of ``make setup`` cheap at every interpreter start.

shoal's packages live in several top-level folders (``manager/`` is ``shoal.manager``, ...), so
``pip install -e .`` has setuptools write a finder module into site-packages, loaded by a ``.pth``
file at every start of this venv's Python. That finder imports pathlib, urllib.parse, fnmatch and
importlib.util to do it: ~20 ms before any program runs -- a fifth of what ``shoal svc ls`` may take.

This script rewrites that module in place (same file, so ``pip uninstall`` still removes it) with a
finder of a few lines that uses only the import system Python has already loaded: each mapped name
(``shoal``, ``shoal.manager``, ...) is looked up by the standard PathFinder in the folder that holds
its folder, which works because every folder is named as its package's last part (checked here).
Subpackages then resolve through their parent's ``__path__`` as usual. A wheel (``pip install .``)
has no finder at all and needs none of this. Run by ``make setup`` after ``pip install -e``; running it
again is harmless.

    .venv/bin/python deploy/editable.py     # says which packages it maps, on stderr
"""

from __future__ import annotations

import ast
import os
import py_compile
import sys
import sysconfig
from pathlib import Path

TEMPLATE = '''"""shoal's editable install: written by deploy/editable.py (run by `make setup`) over the finder
setuptools wrote, to load nothing at interpreter start that Python has not already loaded."""

import sys

PathFinder = next(f for f in sys.meta_path if getattr(f, "__name__", "") == "PathFinder")  # importlib.machinery's
MAPPING: dict[str, str] = {mapping!r}
PARENTS = {{name: folder.rpartition("/")[0] or "/" for name, folder in MAPPING.items()}}


class ShoalEditableFinder:
    """Finds each mapped package in the folder that holds its folder (named as the package's last part)."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        parent = PARENTS.get(fullname)
        return None if parent is None else PathFinder.find_spec(fullname, [parent])


def install():
    if ShoalEditableFinder not in sys.meta_path:
        sys.meta_path.append(ShoalEditableFinder)
'''


def read_mapping(finder: Path) -> dict[str, str]:
    """``MAPPING`` (package name -> folder) of a finder module, setuptools' or ours."""
    found: dict[str, object] = {}
    for node in ast.parse(finder.read_text()).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id in ("MAPPING", "NAMESPACES") and node.value is not None:
            found[target.id] = ast.literal_eval(node.value)
    if found.get("NAMESPACES"):
        raise SystemExit(f"{finder}: namespace packages are not supported here")
    if "MAPPING" not in found:
        raise SystemExit(f"{finder}: no MAPPING found (not an editable finder?)")
    return dict(found["MAPPING"])


def render(mapping: dict[str, str]) -> str:
    """Our finder module for ``mapping``; SystemExit if a folder is not named as its package's last part."""
    for name, folder in mapping.items():
        if os.path.basename(folder.rstrip("/")) != name.rpartition(".")[2]:
            raise SystemExit(f"{name} lives in {folder}: the light finder needs the folder named {name.rpartition('.')[2]!r}")
    return TEMPLATE.format(mapping=dict(sorted(mapping.items())))


def main() -> None:
    """Rewrite the finder; when there is none to rewrite, or it maps what the light one cannot, say so and
    leave it: the install works either way, only its start-up is slower (never fail `make setup` for it)."""
    site = Path(sysconfig.get_paths()["purelib"])
    finders = sorted(site.glob("__editable___shoal_*_finder.py"))
    if len(finders) != 1:
        print(f"deploy/editable.py: no single shoal editable finder in {site} ({[f.name for f in finders]}): left as is",
              file=sys.stderr)
        return
    try:
        text = render(read_mapping(finders[0]))
    except SystemExit as exc:
        print(f"deploy/editable.py: setuptools' finder kept: {exc}", file=sys.stderr)
        return
    finders[0].write_text(text)
    py_compile.compile(str(finders[0]), doraise=True)  # its .pyc now, whatever PYTHONDONTWRITEBYTECODE says
    print(f"{finders[0]}: light editable finder for {', '.join(sorted(read_mapping(finders[0])))}", file=sys.stderr)


if __name__ == "__main__":
    main()
