"""The typed store API: one ``Kind`` per sort of object, building its writes and reading it back.

Each kind knows its key folder, its message class, its secondary indexes (index keys written in the
same transaction as the object, like the service-name index) and the keys it owns (a task's status
report, a node's session), so creating, updating or deleting an object keeps all of them right in one
place. Writes come back as ``Write`` values for a ``Writer`` to apply (alone, or batched with the
leader's fence); reads take the store. ``update_retrying`` is the one read-modify-compare-and-swap loop.
The instances for every kind of object are in ``objects.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from google.protobuf.message import Message

from . import keys
from .base import Compare, Delete, Op, Put, Store
from .writes import Conflict, Write, Writer

__all__ = ["Index", "Kind", "Versioned"]

M = TypeVar("M", bound=Message)


@dataclass
class Versioned(Generic[M]):
    """An object and the mod_revision it was read at (what a write that depends on it compares)."""

    obj: M
    rev: int


@dataclass(frozen=True)
class Index(Generic[M]):
    """A secondary lookup: ``folder + value_of(obj)`` holds the object's id. Values are unique."""

    folder: str
    value_of: Callable[[M], str]

    def key(self, value: str) -> str:
        return self.folder + value


@dataclass(frozen=True)
class Kind(Generic[M]):
    """Where objects of one kind live and how each change of one is written."""

    name: str
    folder: str
    cls: type[M]
    id_of: Callable[[M], str] = field(default=lambda obj: obj.id)  # most kinds carry .id
    indexes: tuple[Index[M], ...] = ()
    owns: tuple[str, ...] = ()  # folders whose key of the same id goes when the object goes

    def key(self, obj_id: str) -> str:
        return self.folder + obj_id

    def decode(self, value: bytes) -> M:
        msg = self.cls()
        msg.ParseFromString(value)
        return msg

    # ---- writes ------------------------------------------------------------------------------
    def create(self, obj: M, obj_id: str | None = None) -> Write:
        """Write ``obj`` only if no object with its id (and none with its index values) exists."""
        oid = self.id_of(obj) if obj_id is None else obj_id
        compares = [Compare(self.key(oid), "create", "==", 0)]
        ops: list[Op] = [Put(self.key(oid), keys.encode(obj))]
        for ix in self.indexes:
            value = ix.value_of(obj)
            if value:
                compares.append(Compare(ix.key(value), "create", "==", 0))
                ops.append(Put(ix.key(value), oid.encode()))
        return Write(tuple(compares), tuple(ops))

    def update(self, obj: M, rev: int, old: M | None = None, obj_id: str | None = None) -> Write:
        """Replace the object read at ``rev`` (0: it must not exist yet).

        Given ``old`` (the object as read), index keys move when an indexed value changed; the new value
        must be free.
        """
        oid = self.id_of(obj) if obj_id is None else obj_id
        compares = [Compare(self.key(oid), "mod", "==", rev)]
        ops: list[Op] = [Put(self.key(oid), keys.encode(obj))]
        for ix in self.indexes if old is not None else ():
            before, after = ix.value_of(old), ix.value_of(obj)  # type: ignore[arg-type]  # old is not None on this branch
            if before == after:
                continue
            if before:
                ops.append(Delete(ix.key(before)))
            if after:
                compares.append(Compare(ix.key(after), "create", "==", 0))
                ops.append(Put(ix.key(after), oid.encode()))
        return Write(tuple(compares), tuple(ops))

    def put(self, obj: M, obj_id: str | None = None, lease: int = 0) -> Write:
        """Write unconditionally (last writer wins); with ``lease``, the key goes when the lease expires."""
        oid = self.id_of(obj) if obj_id is None else obj_id
        return Write((), (Put(self.key(oid), keys.encode(obj), lease),))

    def delete(self, obj: M | str, rev: int | None = None) -> Write:
        """Delete the object (given, or by id), its index keys and the keys it owns.

        With ``rev`` only if it was not changed since it was read at ``rev``. A kind with indexes needs
        the object itself, to know which index keys to delete.
        """
        if isinstance(obj, str):
            if self.indexes:
                raise TypeError(f"deleting a {self.name} needs the object, not its id: its index keys go too")
            oid = obj
        else:
            oid = self.id_of(obj)
        compares = () if rev is None else (Compare(self.key(oid), "mod", "==", rev),)
        ops: list[Op] = [Delete(self.key(oid))]
        ops += [Delete(folder + oid) for folder in self.owns]
        if not isinstance(obj, str):
            ops += [Delete(ix.key(v)) for ix in self.indexes if (v := ix.value_of(obj))]
        return Write(compares, tuple(ops))

    # ---- reads -------------------------------------------------------------------------------
    async def get(self, store: Store, obj_id: str) -> Versioned[M] | None:
        kv = await store.get(self.key(obj_id))
        return Versioned(self.decode(kv.value), kv.mod_revision) if kv is not None else None

    async def list(self, store: Store) -> list[Versioned[M]]:
        """Every object of the kind, sorted by id."""
        rng = await store.range(self.folder)
        return [Versioned(self.decode(kv.value), kv.mod_revision) for kv in rng.kvs]

    async def list_at(self, store: Store) -> tuple[Sequence[Versioned[M]], int]:
        """Every object of the kind, and the store revision they were read at (for ``unchanged_since``)."""
        rng = await store.range(self.folder)
        return [Versioned(self.decode(kv.value), kv.mod_revision) for kv in rng.kvs], rng.revision

    def unchanged_since(self, rev: int) -> Write:
        """A write (compares only) that holds while no object of the kind was created or changed after
        revision ``rev``: joined to another write, that one applies only if the kind is as it was read."""
        return Write((Compare(self.folder, "mod", "<", rev + 1, prefix=True),), ())

    async def lookup(self, store: Store, index: Index[M], value: str) -> Versioned[M] | None:
        """The object whose indexed value is ``value`` (the service named ``web``)."""
        kv = await store.get(index.key(value))
        return await self.get(store, kv.value.decode()) if kv is not None else None

    async def update_retrying(
        self,
        writer: Writer,
        obj_id: str,
        mutate: Callable[[M | None], M | None],
        attempts: int = 20,
    ) -> M | None:
        """Read the object, ``mutate`` it, compare-and-swap it back; on a conflict read again and retry.

        ``mutate`` gets a fresh copy of the current object (None when there is none) and returns the
        object to write, or None to write nothing. Returns what was written (or, when ``mutate`` wrote
        nothing, the current object). Raises Conflict after ``attempts`` lost races.
        """
        for _ in range(attempts):
            cur = await self.get(writer.store, obj_id)
            draft = None
            if cur is not None:
                draft = self.cls()
                draft.CopyFrom(cur.obj)
            new = mutate(draft)
            if new is None:
                return cur.obj if cur is not None else None
            write = self.create(new, obj_id) if cur is None else self.update(new, cur.rev, cur.obj, obj_id)
            try:
                await writer.apply(write)
            except Conflict:
                continue
            return new
        raise Conflict(f"{self.name} {obj_id or '(singleton)'} kept changing: gave up after {attempts} attempts")

