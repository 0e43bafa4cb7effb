"""Where each kind of object lives in etcd, and how it is encoded.

Every key is under one versioned prefix; values are serialized protobuf messages. Desired state
(services, tasks) and observed state (task-status, sessions) live under different keys so the parties
that write them never race.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import Message

from shoal.proto import logs_pb2 as lpb
from shoal.proto import types_pb2 as pb

PREFIX = "/shoal/v1/"
CLUSTER = PREFIX + "cluster"  # the one cluster object (join tokens)
LEADER = PREFIX + "leader"  # the election key: the leader's id, on its lease
ROOT_CA = PREFIX + "ca/root"  # the cluster CA, its key sealed
IMAGES = PREFIX + "images/"  # cluster image records, by image id (hex)
EVENTS = PREFIX + "events/"  # the leader's events (shoal events), by time-ordered id; not mirrored by the cache
DATA_KEY = PREFIX + "ca/datakey"  # the cluster data key (encrypts secrets), sealed under the KEK

# kind -> (key folder, message class): the kinds the manager's cache mirrors
KINDS: dict[str, tuple[str, type[Message]]] = {
    "service": (PREFIX + "services/", pb.Service),
    "task": (PREFIX + "tasks/", pb.Task),
    "status": (PREFIX + "task-status/", pb.TaskStatus),
    "node": (PREFIX + "nodes/", pb.Node),
    "session": (PREFIX + "sessions/", pb.NodeSession),
    "manager": (PREFIX + "managers/", pb.ManagerStatus),
    "network": (PREFIX + "networks/", pb.Network),
    # written by the leader's allocator only (observed networking state, merged into objects on read)
    "endpoint": (PREFIX + "service-endpoints/", pb.ServiceEndpoint),  # by service id
    "addresses": (PREFIX + "task-networks/", pb.TaskAddresses),  # by task id
    "nodenet": (PREFIX + "node-networks/", pb.NodeNetworkInfo),  # by node id
    "tombstone": (PREFIX + "tombstones/", pb.Tombstone),  # removed nodes: their certificates are refused
    "logsub": (PREFIX + "log-subscriptions/", lpb.LogSubscription),  # live `svc logs` streams, on their manager's lease
    "secret": (PREFIX + "secrets/", pb.Secret),  # data sealed with the cluster data key, never in clear
    "config": (PREFIX + "configs/", pb.Config),
    "attachment": (PREFIX + "attachments/", pb.ContainerAttachment),  # standalone containers on attachable networks
}
SERVICE_NAMES = PREFIX + "names/services/"
NETWORK_NAMES = PREFIX + "names/networks/"
SECRET_NAMES = PREFIX + "names/secrets/"
CONFIG_NAMES = PREFIX + "names/configs/"

M = TypeVar("M", bound=Message)


def key(kind: str, obj_id: str) -> str:
    return KINDS[kind][0] + obj_id


def service_name_key(name: str) -> str:
    return SERVICE_NAMES + name


def parse(k: str) -> tuple[str, str] | None:
    """``/shoal/v1/tasks/abc`` -> ("task", "abc"); None for keys that are not objects (indexes, cluster)."""
    for kind, (folder, _cls) in KINDS.items():
        if k.startswith(folder):
            return kind, k[len(folder) :]
    return None


def decode(kind: str, value: bytes) -> Message:
    msg = KINDS[kind][1]()
    msg.ParseFromString(value)
    return msg


def encode(msg: Message) -> bytes:
    return msg.SerializeToString(deterministic=True)
