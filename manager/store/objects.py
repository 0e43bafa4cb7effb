"""Every kind of object the manager keeps in etcd, and the writes that belong to one kind only.

Components write through these: ``writer.apply(objects.services.create(svc))`` creates a service and
its name index together; ``objects.tasks.delete(task_id, rev)`` takes the task's status report with
it; ``objects.report(task_id, status)`` writes a report only while its task exists. Nothing outside
``manager/store`` builds a compare or a put.
"""

from __future__ import annotations

from google.protobuf.message import Message

from shoal.proto import images_pb2 as ipb
from shoal.proto import logs_pb2 as lpb
from shoal.proto import types_pb2 as pb

from . import keys
from .base import Compare, Delete, Put, Store
from .kinds import Index, Kind
from .writes import Fence, Write

__all__ = [
    "CONFIG_NAME", "NETWORK_NAME", "SECRET_NAME", "SERVICE_NAME", "attachments", "configs", "data_key", "secrets", "addresses", "campaign", "cluster", "end_session", "events", "fence", "images", "endpoints", "leader_of", "logsubs", "managers", "nodenets", "networks", "nodes",
    "remove_node", "report", "root_ca", "services", "sessions", "statuses", "tasks", "tombstones",
]  # fmt: skip


def _by_key(obj: Message) -> str:
    raise TypeError(f"a {type(obj).__name__} carries no id: pass obj_id (the id of the object it is about)")


def _singleton(obj: Message) -> str:
    return ""  # one object at the kind's key itself


def _folder(kind: str) -> str:
    return keys.KINDS[kind][0]


SERVICE_NAME: Index[pb.Service] = Index(keys.SERVICE_NAMES, lambda s: s.spec.name)

NETWORK_NAME: Index[pb.Network] = Index(keys.NETWORK_NAMES, lambda n: n.spec.name)

SECRET_NAME: Index[pb.Secret] = Index(keys.SECRET_NAMES, lambda s: s.spec.name)

CONFIG_NAME: Index[pb.Config] = Index(keys.CONFIG_NAMES, lambda c: c.spec.name)

services: Kind[pb.Service] = Kind("service", _folder("service"), pb.Service, indexes=(SERVICE_NAME,), owns=(_folder("endpoint"),))
tasks: Kind[pb.Task] = Kind("task", _folder("task"), pb.Task, owns=(_folder("status"), _folder("addresses")))
statuses: Kind[pb.TaskStatus] = Kind("status", _folder("status"), pb.TaskStatus, id_of=_by_key)  # by task id
nodes: Kind[pb.Node] = Kind("node", _folder("node"), pb.Node, owns=(_folder("session"), _folder("nodenet")))
sessions: Kind[pb.NodeSession] = Kind("session", _folder("session"), pb.NodeSession, id_of=lambda s: s.node_id)
managers: Kind[pb.ManagerStatus] = Kind("manager", _folder("manager"), pb.ManagerStatus, id_of=_by_key)  # by node id
images: Kind[ipb.ImageRecord] = Kind("image", keys.IMAGES, ipb.ImageRecord, id_of=lambda r: r.id.removeprefix("sha256:"))
cluster: Kind[pb.Cluster] = Kind("cluster", keys.CLUSTER, pb.Cluster, id_of=_singleton)
networks: Kind[pb.Network] = Kind("network", _folder("network"), pb.Network, indexes=(NETWORK_NAME,))
endpoints: Kind[pb.ServiceEndpoint] = Kind("endpoint", _folder("endpoint"), pb.ServiceEndpoint, id_of=lambda e: e.service_id)
addresses: Kind[pb.TaskAddresses] = Kind("addresses", _folder("addresses"), pb.TaskAddresses, id_of=lambda a: a.task_id)
nodenets: Kind[pb.NodeNetworkInfo] = Kind("nodenet", _folder("nodenet"), pb.NodeNetworkInfo, id_of=_by_key)  # by node id
root_ca: Kind[pb.RootCA] = Kind("root CA", keys.ROOT_CA, pb.RootCA, id_of=_singleton)
secrets: Kind[pb.Secret] = Kind("secret", _folder("secret"), pb.Secret, indexes=(SECRET_NAME,))
configs: Kind[pb.Config] = Kind("config", _folder("config"), pb.Config, indexes=(CONFIG_NAME,))
data_key: Kind[pb.DataKey] = Kind("data key", keys.DATA_KEY, pb.DataKey, id_of=_singleton)
tombstones: Kind[pb.Tombstone] = Kind("tombstone", _folder("tombstone"), pb.Tombstone, id_of=lambda t: t.node_id)
attachments: Kind[pb.ContainerAttachment] = Kind("attachment", _folder("attachment"), pb.ContainerAttachment)
logsubs: Kind[lpb.LogSubscription] = Kind("logsub", _folder("logsub"), lpb.LogSubscription)
events: Kind[pb.Event] = Kind("event", keys.EVENTS, pb.Event)


def remove_node(node: pb.Node, rev: int, tombstone: pb.Tombstone) -> Write:
    """Delete a node (and its session) read at ``rev`` and tombstone its id, in one transaction."""
    return Write.join([nodes.delete(node, rev), tombstones.put(tombstone)])


def report(task_id: str, status: pb.TaskStatus) -> Write:
    """An agent's status report for a task, written only while the task exists (never an orphan key)."""
    return Write((Compare(tasks.key(task_id), "create", "!=", 0),), (Put(statuses.key(task_id), keys.encode(status)),))


def end_session(session: pb.NodeSession) -> Write:
    """Delete a node's session key only if it still holds this session (not a newer one elsewhere)."""
    k = sessions.key(session.node_id)
    return Write((Compare(k, "value", "==", keys.encode(session)),), (Delete(k),))


def campaign(manager_id: str, lease: int) -> Write:
    """Take the election key on ``lease`` if nobody holds it; its revision becomes the leader's fence."""
    return Write((Compare(keys.LEADER, "create", "==", 0),), (Put(keys.LEADER, manager_id.encode(), lease),))


def fence(won_at: int) -> Fence:
    """The fence of the leader that took the election key at revision ``won_at``: its Writer compares it."""
    return Fence(keys.LEADER, won_at)


async def leader_of(store: Store) -> str:
    """The id of the manager holding the election key ("" when none does)."""
    kv = await store.get(keys.LEADER)
    return kv.value.decode() if kv is not None else ""
