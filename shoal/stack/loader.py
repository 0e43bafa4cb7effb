"""Loading a stack: read each ``-c`` file, substitute variables, validate, merge, resolve, check.

Everything found wrong in any file is reported together in one ``StackError`` (file:line:column,
key path, message); nothing is deployed from a stack that has one. Valid compose keys that shoal
does not implement, and the keys inside services and top-level objects it accepts but does not apply
(``shoal.stack.ignored``: a port's host_ip, a network's internal...), give one warning naming them
(and the services that use them).

After merging, the stack is resolved against the machine it is read on: relative paths (bind mount
sources, ``env_file``, secret and config ``file:``) are taken relative to the directory of the
first stack file, as docker does; ``env_file`` contents are read into each service's environment
(values written in ``environment`` win); a variable listed without a value takes its value from
the environment. Missing files are problems, reported with the key that names them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.stack.errors import Position, Problems
from shoal.stack.ignored import ignored_options
from shoal.stack.interpolate import interpolate, parse_env_text
from shoal.stack.merge import check_stack, merge_files
from shoal.stack.model_file import UNSUPPORTED_TOP, ComposeFile
from shoal.stack.model_service import UNSUPPORTED, Service
from shoal.stack.validate import validate_file
from shoal.stack.yamlfile import Marks, parse

Reader = Callable[[Path], str]


@dataclass
class Stack:
    """A loaded, merged and checked stack."""

    compose: ComposeFile
    files: list[str]
    working_dir: Path
    marks: Marks
    env: dict[str, str]
    warnings: list[str] = field(default_factory=list)


def read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_stack(files: Sequence[str | os.PathLike[str]], environ: Mapping[str, str] | None = None, read: Reader = read_text) -> Stack:
    """Load and check ``files`` (merged in order); raise StackError listing every problem."""
    if not files:
        raise ValueError("at least one compose file is needed")
    problems = Problems()
    paths = [Path(f) for f in files]
    working_dir = paths[0].absolute().parent
    env = _environment(working_dir, environ if environ is not None else os.environ, read, problems)
    marks = Marks()
    loaded: list[ComposeFile] = []
    unsupported: dict[str, set[str]] = {}
    for path in paths:
        before = len(problems.items)
        doc, file_marks = _read_file(path, env, read, problems)
        marks.update(file_marks)
        if doc is None:
            continue
        if isinstance(doc, dict):
            _note_unsupported(doc, unsupported)
        failed = {p.path for p in problems.items[before:]}  # values that could not be substituted
        checked = len(problems.items)
        model = validate_file(doc, file_marks, problems)
        problems.items[checked:] = [p for p in problems.items[checked:] if not _under(p.path, failed)]
        if model is not None:
            loaded.append(model)
    problems.raise_if_any()
    merged = merge_files(loaded)  # not empty: every file loaded without a problem
    merged = resolve_stack(merged, working_dir, env, marks, problems, read)
    check_stack(merged, marks, problems)
    problems.raise_if_any()
    for key, names in ignored_options(merged).items():
        unsupported.setdefault(key, set()).update(names)
    warnings = [unsupported_warning(unsupported)] if unsupported else []
    return Stack(merged, [str(p) for p in paths], working_dir, marks, env, warnings)


def _under(path: tuple[Any, ...], roots: set[tuple[Any, ...]]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one (a value already reported once)."""
    return any(path[: len(r)] == r for r in roots)


def _environment(working_dir: Path, environ: Mapping[str, str], read: Reader, problems: Problems) -> dict[str, str]:
    """Variables for interpolation: the ``.env`` beside the first file, overridden by the environment."""
    dotenv = working_dir / ".env"
    values: dict[str, str] = {}
    try:
        text = read(dotenv)
    except FileNotFoundError:
        text = None
    except OSError as exc:
        problems.add(Position(str(dotenv), 1, 1), (), f"cannot read: {exc.strerror or exc}")
        text = None
    if text is not None:
        values = parse_env_text(text, str(dotenv), problems, environ)
    return {**values, **environ}


def _read_file(path: Path, env: Mapping[str, str], read: Reader, problems: Problems) -> tuple[Any, Marks]:
    name = str(path)
    try:
        text = read(path)
    except OSError as exc:
        problems.add(None, (), f"{name}: cannot read the stack file: {exc.strerror or exc}")
        return None, Marks()
    except UnicodeDecodeError:
        problems.add(None, (), f"{name}: not a text file (expected UTF-8 YAML)")
        return None, Marks()
    before = len(problems.items)
    doc, marks = parse(text, name, problems)
    if doc is None and len(problems.items) == before:
        problems.add(Position(name, 1, 1), (), "the file is empty: a stack needs a services: section")
    if isinstance(doc, dict):
        doc = interpolate(doc, env, marks, problems)
    return doc, marks


def _note_unsupported(doc: dict[str, Any], found: dict[str, set[str]]) -> None:
    for key in UNSUPPORTED_TOP & doc.keys():
        found.setdefault(key, set())
    services = doc.get("services")
    if isinstance(services, dict):
        for name, svc in services.items():
            if isinstance(svc, dict):
                for key in UNSUPPORTED & svc.keys():
                    found.setdefault(key, set()).add(name)


def unsupported_warning(found: dict[str, set[str]]) -> str:
    """``Ignoring unsupported options: build (services: api, web), links (services: web)``."""
    parts = []
    for key in sorted(found):
        names = sorted(found[key])
        parts.append(f"{key} (service{'s' if len(names) > 1 else ''}: {', '.join(names)})" if names else key)
    return "Ignoring unsupported options: " + ", ".join(parts)


def absolute(path: str, working_dir: Path) -> str:
    """``path`` made absolute: ``~`` expanded, relative paths under ``working_dir``. A path with a NUL byte is
    left as it is (no file has such a name: reading it is reported, as any unreadable file)."""
    if "\x00" in path:
        return path
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (working_dir / p).resolve())


def resolve_stack(
    stack: ComposeFile,
    working_dir: Path,
    env: Mapping[str, str],
    marks: Marks,
    problems: Problems,
    read: Callable[[Path], str],
) -> ComposeFile:
    """``stack`` with paths made absolute and each service's environment complete."""
    services = {
        name: _service(name, svc, working_dir, env, marks, problems, read) for name, svc in stack.services.items()
    }
    update: dict[str, object] = {"services": services}
    for kind in ("secrets", "configs"):
        objs = dict(getattr(stack, kind))
        for name, obj in objs.items():
            if obj.file is None:
                continue
            path = absolute(obj.file, working_dir)
            if not Path(path).is_file():
                where = (kind, name, "file")
                problems.add(marks.value(where), where, f"file {path} not found")
            objs[name] = obj.model_copy(update={"file": path})
        update[kind] = objs
    return stack.model_copy(update=update)


def _service(
    name: str,
    svc: Service,
    working_dir: Path,
    env: Mapping[str, str],
    marks: Marks,
    problems: Problems,
    read: Callable[[Path], str],
) -> Service:
    from_files: dict[str, str] = {}
    env_files = []
    for i, ef in enumerate(svc.env_file):
        path = absolute(ef.path, working_dir)
        env_files.append(ef.model_copy(update={"path": path}))
        where = ("services", name, "env_file", i)
        try:
            text = read(Path(path))
        except FileNotFoundError:
            if ef.required:
                problems.add(marks.value(where), where, f"env file {path} not found")
            continue
        except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL byte in the path
            problems.add(marks.value(where), where, f"cannot read env file {path!r}: {exc}")
            continue
        from_files.update(parse_env_text(text, path, problems, env))
    environment = {**from_files, **svc.environment}
    for key, value in environment.items():
        if value is None and key in env:
            environment[key] = env[key]
    mounts = [
        m.model_copy(update={"source": absolute(m.source, working_dir)}) if m.type == "bind" and m.source else m
        for m in svc.volumes
    ]
    return svc.model_copy(update={"environment": environment, "env_file": env_files, "volumes": mounts})
