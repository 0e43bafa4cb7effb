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


def test_the_core_contract_covers_every_core_module():
    """A core module left out of the contract could import the manager unnoticed."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    core = next(c for c in contracts if c["name"].startswith("the shared core"))
    modules = {f"shoal.{p.stem}" for p in (ROOT / "shoal").glob("*.py") if p.stem != "__init__"}
    assert modules - set(core["source_modules"]) == set(), "add these core modules to the core contract"
    assert {"shoal.runtime", "shoal.manager", "shoal.worker", "shoal.cli"} <= set(core["forbidden_modules"])


def _imported_modules(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):  # every import, function-local ones too
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_the_cli_never_imports_the_manager_or_the_worker():
    """The CLI reaches them only through shoal.node (the composition root)."""
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if m.startswith(("shoal.manager", "shoal.worker")))
        for p in (ROOT / "shoal" / "cli").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_lab_never_imports_the_manager_or_the_worker():
    """Lab hosts run the ordinary shoal commands; the lab engine only plumbs hosts and processes."""
    offenders = {
        str(p.relative_to(ROOT)): sorted(m for m in _imported_modules(p) if m.startswith(("shoal.manager", "shoal.worker", "shoal.cli")))
        for p in (ROOT / "shoal" / "lab").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


SOURCE_FOLDERS = ("shoal", "manager", "worker", "runtime", "proto")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def _source_files() -> list[Path]:
    return [p for d in SOURCE_FOLDERS for p in (ROOT / d).rglob("*.py") if "_pb2" not in p.name]


def test_no_source_file_is_over_400_lines():
    """One concern a module: a file past the limit is split, not grown."""
    long = {str(p.relative_to(ROOT)): n for p in _source_files() if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert long == {}, f"split these files (limit {MAX_FILE_LINES} lines)"


def test_no_source_function_is_over_60_lines():
    """A function longer than a screen hides its steps: name them as functions of their own."""
    import ast

    long = {}
    for p in _source_files():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long[f"{p.relative_to(ROOT)}:{node.lineno} {node.name}"] = n
    assert long == {}, f"split these functions (limit {MAX_FUNCTION_LINES} lines)"


def test_the_size_checks_see_the_whole_source_tree():
    """The two checks above would pass vacuously if the folders moved: they must read every package."""
    files = {str(p.relative_to(ROOT)) for p in _source_files()}
    for expected in ("shoal/cli/main.py", "manager/server.py", "worker/agent.py", "runtime/__init__.py"):
        assert expected in files


def test_no_test_module_imports_another_test_module():
    """Shared test code lives in tests/fixtures/ (or a helper module), never in a test_*.py another one imports:
    importing a test module collects its tests and fixtures a second time under another name."""
    offenders = {}
    for p in (ROOT / "tests").rglob("*.py"):
        bad = sorted(m for m in _imported_modules(p) if any(part.startswith("test_") for part in m.split(".")))
        if bad:
            offenders[str(p.relative_to(ROOT))] = bad
    assert offenders == {}


def test_every_test_module_has_a_name_of_its_own():
    """The test folders are not packages: pytest imports each test module by its file name, so two of the same
    name in different folders make the second fail to collect."""
    from collections import Counter

    names = Counter(p.name for p in (ROOT / "tests").rglob("test_*.py"))
    assert {n: c for n, c in names.items() if c > 1} == {}


def test_the_readme_describes_every_package_and_sends_no_one_outside_the_repository():
    """A user of shoal has the README, not the team's notes: its layout table names every folder that is a
    package (the top-level ones and the core's sub-packages), and nothing points outside the repository."""
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):readme.index("\n## ", readme.index("## Layout") + 1)]
    dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    folders = {f"`{d}/`" for d in dirs.values()}
    folders |= {f"`shoal/{p.parent.name}/`" for p in (ROOT / "shoal").glob("*/__init__.py")}
    assert {f for f in folders if f not in layout} == set(), "describe these folders in the README's Layout"
    assert "../shared" not in readme and "DESIGN.md" not in readme
