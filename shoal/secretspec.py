"""The rules of secrets and configs that every side shares: names, sizes, references and their paths.

Docker's rules, checked in one place: the CLI parses ``--secret``/``--config`` with them, the control
API validates objects and service references with them, stacks build references with them, and the
agent computes where each file appears inside a container with ``target_path``. Pure functions on
plain data and protobuf messages.
"""

from __future__ import annotations

import posixpath
import re

from shoal.proto import types_pb2 as pb

MAX_SIZE = 500 * 1024
"""Docker's limit (swarmkit MaxSecretSize): data must be at least 1 byte and less than 500 KiB."""
NAME_RE = re.compile(r"[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?")
NAME_MAX = 64
SECRETS_DIR = "/run/secrets"
DEFAULT_MODE = 0o444
RESERVED = ("/", "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue")
MAX_TASK_FILES = 16 << 20
"""The secrets and configs of one task together: what the runtime places in one container (its start
request carries them, runtime/files.MAX_TOTAL). Docker has no such sum, but 100 references of almost
500 KiB would be 50 MiB in memory per task; a spec over it is refused when it is stored."""
MAX_REFS = 100
"""References per service (each is a file in every task): bounded like every list of a spec."""


class SecretSpecError(ValueError):
    """A secret, config or reference that is not valid; the message says what is wrong."""

    def __init__(self, message: str, kind: str = "secret") -> None:
        super().__init__(message)
        self.kind = kind  # "secret" or "config": which spec field is wrong


def check_name(kind: str, name: str) -> None:
    """Docker's name rule for secrets and configs."""
    if not name or len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise SecretSpecError(
            f"invalid {kind} name {name!r}: only {NAME_MAX} [a-zA-Z0-9-_.] characters allowed, "
            "and the start and end character must be [a-zA-Z0-9]"
        )


def check_data(kind: str, data: bytes, size: int | None = None) -> None:
    """1 byte up to (not including) 500 KiB. ``size``: the input's whole size when only its start was read
    into ``data`` (a larger file is never read whole)."""
    if 0 < len(data) < MAX_SIZE:
        return
    if size is None and len(data) > MAX_SIZE:
        got = f"more than {MAX_SIZE}"
    else:
        got = str(len(data) if size is None else size)
    raise SecretSpecError(f"{kind} data must be larger than 0 and less than {MAX_SIZE} bytes (500 KiB); got {got} bytes")


def check_labels(labels: dict[str, str]) -> None:
    for key in labels:
        if not key or "\x00" in key:
            raise SecretSpecError(f"invalid label {key!r}: a label needs a key")


def parse_mode(text: str) -> int:
    """``0440`` / ``440`` (octal, as docker reads it) -> 0o440; at most 0777."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise SecretSpecError(f"invalid mode {text!r}: use octal permission bits such as 0440") from None
    if not 0 <= mode <= 0o777:
        raise SecretSpecError(f"invalid mode {text!r}: at most 0777")
    return mode


def _check_id(what: str, value: str) -> str:
    if not value.isdigit() or int(value) > 0xFFFFFFFE:
        raise SecretSpecError(f"invalid {what} {value!r}: use a numeric id")
    return str(int(value))


def parse_ref(kind: str, text: str) -> tuple[str, pb.FileTarget]:
    """``NAME`` or ``source=NAME[,target=T][,uid=U][,gid=G][,mode=M]`` -> (name, file target)."""
    fields = {"target": "", "uid": "0", "gid": "0", "mode": f"{DEFAULT_MODE:o}"}
    source = ""
    if "=" not in text:
        source = text
    else:
        for part in text.split(","):
            key, eq, value = part.partition("=")
            key = key.strip().lower()
            if not eq:
                raise SecretSpecError(f"invalid {kind} option {part!r} in {text!r}: expected key=value")
            if key in ("source", "src"):
                source = value
            elif key in fields:
                fields[key] = value
            else:
                raise SecretSpecError(f"invalid field {key!r} in {kind} request {text!r}")
    if not source:
        raise SecretSpecError(f"invalid {kind} {text!r}: source is required")
    target = pb.FileTarget(name=fields["target"] or source, uid=_check_id("uid", fields["uid"]),
                           gid=_check_id("gid", fields["gid"]), mode=parse_mode(fields["mode"]))
    return source, target


def target_path(kind: str, name: str) -> str:
    """Where a reference's file appears: a relative secret target under /run/secrets, a relative
    config target under /; an absolute target as is."""
    base = SECRETS_DIR if kind == "secret" else "/"
    return posixpath.normpath(posixpath.join(base, name))


def check_target(kind: str, name: str) -> str:
    """The file's path in the container; SecretSpecError for a target that cannot be a file there."""
    if not name or "\x00" in name:
        raise SecretSpecError(f"invalid {kind} target {name!r}")
    if not name.startswith("/") and ".." in name.split("/"):
        raise SecretSpecError(f"invalid {kind} target {name!r}: must not leave {SECRETS_DIR if kind == 'secret' else '/'}")
    path = target_path(kind, name)
    if path in RESERVED or any(path.startswith(r + "/") for r in RESERVED[1:]):
        raise SecretSpecError(f"invalid {kind} target {name!r}: {path} is reserved")
    return path


def check_refs(container: pb.ContainerSpec) -> None:
    """Every secret and config reference of a spec: sources, targets (unique paths), ids, modes."""
    refs = [("secret", r.secret_name or r.secret_id, r.file) for r in container.secrets]
    refs += [("config", r.config_name or r.config_id, r.file) for r in container.configs]
    if len(refs) > MAX_REFS:
        raise SecretSpecError(f"too many secrets and configs: {len(refs)} (at most {MAX_REFS})")
    seen: dict[str, str] = {}
    for kind, source, f in refs:
        try:
            _check_ref(kind, source, f, seen)
        except SecretSpecError as exc:
            raise SecretSpecError(str(exc), kind) from None


def _check_ref(kind: str, source: str, f: pb.FileTarget, seen: dict[str, str]) -> None:
    if not source:
        raise SecretSpecError(f"{kind} reference: source is required")
    path = check_target(kind, f.name or source)
    if path in seen:
        raise SecretSpecError(f"{kind} {source}: target {path} is already used by {seen[path]}")
    seen[path] = f"{kind} {source}"
    for what, value in (("uid", f.uid), ("gid", f.gid)):
        if value:
            _check_id(what, value)
    if f.mode > 0o777:
        raise SecretSpecError(f"{kind} {source}: invalid mode {f.mode:o}: at most 0777")


def with_defaults(container: pb.ContainerSpec) -> None:
    """Fill each reference's target (the source name), uid/gid ("0") and mode (0444) in place."""
    pairs = [(r.file, r.secret_name) for r in container.secrets] + [(r.file, r.config_name) for r in container.configs]
    for f, source in pairs:
        if not f.name:
            f.name = source
        f.uid = f.uid or "0"
        f.gid = f.gid or "0"
        if f.mode == 0:  # proto3 cannot tell an unset mode from 0000: docker's default, 0444
            f.mode = DEFAULT_MODE


def check_task_files(sizes: list[int]) -> None:
    """The sizes of the files one task gets (a secret or config referenced twice counts twice)."""
    total = sum(sizes)
    if total > MAX_TASK_FILES:
        raise SecretSpecError(
            f"the secrets and configs of one task total {total} bytes; at most {MAX_TASK_FILES} bytes (16 MiB) fit in its container"
        )
