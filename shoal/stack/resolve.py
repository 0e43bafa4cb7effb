"""Resolving a merged stack against the machine it is read on: files, paths and the environment.

Relative paths (bind mount sources, ``env_file``, secret and config ``file:``) are taken relative to
the directory of the first stack file, as docker does; ``env_file`` contents are read into each
service's environment (values written in ``environment`` win); a variable listed without a value
takes its value from the environment. Files that are missing are problems, reported with the key
that names them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from shoal.stack.envfile import parse_env_text
from shoal.stack.errors import Problems
from shoal.stack.model_file import ComposeFile
from shoal.stack.model_service import Service
from shoal.stack.yamlfile import Marks


def absolute(path: str, working_dir: Path) -> str:
    """``path`` made absolute: ``~`` expanded, relative paths under ``working_dir``."""
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
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(marks.value(where), where, f"cannot read env file {path}: {exc}")
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
