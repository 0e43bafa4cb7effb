"""The Store's values as etcd's gRPC messages and back: compares, operations, key ranges, key-values, events.

Pure conversions, kept apart from ``etcd`` (the client, its threads and watches) so each stays one
concern; only ``manager/store`` imports etcd3, as the import contract says.
"""

from __future__ import annotations

from typing import Any

import etcd3.events
from etcd3 import etcdrpc
from etcd3.utils import prefix_range_end

from .base import KV, Compare, Delete, Event, Op, Put

_TARGETS = {"mod": etcdrpc.Compare.MOD, "create": etcdrpc.Compare.CREATE,
            "version": etcdrpc.Compare.VERSION, "value": etcdrpc.Compare.VALUE}
_RESULTS = {"==": etcdrpc.Compare.EQUAL, "!=": etcdrpc.Compare.NOT_EQUAL,
            "<": etcdrpc.Compare.LESS, ">": etcdrpc.Compare.GREATER}


def key_range(prefix: str) -> tuple[bytes, bytes]:
    """The [key, range_end) of every key under ``prefix`` ("" is the whole keyspace)."""
    if not prefix:
        return b"\0", b"\0"  # etcd: every key
    key = prefix.encode()
    return key, prefix_range_end(key)


def kv_of(kv: Any) -> KV:
    """A KV of the Store from etcd's mvccpb.KeyValue."""
    return KV(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision, kv.lease)


def compare_msg(c: Compare) -> Any:
    """etcd's Compare for a Store compare (a range compare for a prefix); TypeError when the value does not
    fit its target."""
    msg = etcdrpc.Compare(key=c.key.encode(), target=_TARGETS[c.target], result=_RESULTS[c.op])
    if c.prefix:
        if not c.key:
            raise ValueError("a prefix compare needs a prefix (not the whole keyspace)")
        msg.key, msg.range_end = key_range(c.key)
    if c.target == "value":
        if not isinstance(c.value, bytes):
            raise TypeError(f"compare on value of {c.key!r} needs bytes")
        msg.value = c.value
    elif isinstance(c.value, bytes):
        raise TypeError(f"compare on {c.target} of {c.key!r} needs int")
    else:
        setattr(msg, {"mod": "mod_revision", "create": "create_revision", "version": "version"}[c.target], c.value)
    return msg


def op_msg(op: Op) -> Any:
    """etcd's RequestOp for a Put or Delete (a prefix delete as a range)."""
    if isinstance(op, Put):
        return etcdrpc.RequestOp(request_put=etcdrpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
    assert isinstance(op, Delete)
    if op.prefix:
        key, end = key_range(op.key)
        return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=key, range_end=end))
    return etcdrpc.RequestOp(request_delete_range=etcdrpc.DeleteRangeRequest(key=op.key.encode()))


def event_of(e: Any) -> Event:
    """A Store event from one the etcd3 client's watch delivered."""
    if isinstance(e, etcd3.events.DeleteEvent):
        return Event("delete", e.key.decode(), None, e.mod_revision)
    return Event("put", e.key.decode(), e.value, e.mod_revision)
