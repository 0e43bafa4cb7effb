"""The secrets and configs the manager sent this node, in memory only, and the files a task gets from them.

The dispatcher sends a node the data of a secret or config only while one of its tasks still has to
start with it, and tells it to drop the data afterwards (``removed_secrets``); a full assignment set
(a new session) replaces everything held. Nothing here touches the disk or a log: the data goes from
the session's message to this dict, and from here to the runtime's start request, which places it in
the container's own tmpfs. ``files_for`` says which secret a task lacks, by name, never its content.
"""

from __future__ import annotations

from shoal import secretspec
from shoal.proto import dispatcher_pb2 as dpb
from shoal.proto import types_pb2 as pb
from shoal.runtime.files import ContainerFile


class MissingFile(Exception):
    """A task refers to a secret or config this node was not sent (the message names it)."""


class TaskFiles:
    def __init__(self) -> None:
        self._data: dict[str, dict[str, bytes]] = {"secret": {}, "config": {}}

    def apply(self, a: dpb.Assignments) -> None:
        """Take the secrets and configs of one assignment set (a full set replaces what is held)."""
        for kind, added, removed in (("secret", a.secrets, a.removed_secrets), ("config", a.configs, a.removed_configs)):
            held = self._data[kind]
            if a.full:
                held.clear()
            for f in added:
                held[f.id] = f.data
            for oid in removed:
                held.pop(oid, None)

    def held(self, kind: str) -> set[str]:
        """Ids of the secrets (or configs) held now."""
        return set(self._data[kind])

    def files_for(self, task: pb.Task) -> list[ContainerFile]:
        """The files ``task``'s container gets; MissingFile for a reference this node holds no data for."""
        out = []
        c = task.spec.container
        refs = [("secret", r.secret_id, r.secret_name, r.file) for r in c.secrets]
        refs += [("config", r.config_id, r.config_name, r.file) for r in c.configs]
        for kind, oid, name, f in refs:
            data = self._data[kind].get(oid)
            if data is None:
                raise MissingFile(f"{kind} {name or oid} is not available on this node (removed, or not sent)")
            out.append(ContainerFile(
                target=secretspec.target_path(kind, f.name or name), data=data,
                uid=int(f.uid or 0), gid=int(f.gid or 0), mode=f.mode or secretspec.DEFAULT_MODE,
            ))
        return out
