"""Cluster images: the manager side of ``shoal image load --cluster`` and of a worker's image pull.

``Load`` receives an image tarball from the CLI, verifies and extracts it with the runtime's image
loader into this manager's store (``<data-dir>/cluster-images``), keeping every layer's
uncompressed tar as a blob named by its diff_id, and writes one record per image to etcd
(``/shoal/v1/images/<id>``: tags, layers, config, and the managers holding the blobs). ``Resolve``
and ``List`` read those records; ``PullLayer`` streams a blob this manager holds (NOT_FOUND
otherwise, so a worker tries the next manager). ``replicate`` runs on every manager: it pulls
the blobs of any recorded image it lacks from the managers that hold them, checks each against its
diff_id, and adds itself to the record's holders, so every manager ends up serving every layer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc

from shoal import log, tls
from shoal.certfiles import CertFiles
from shoal.manager.store import keys, objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Writer
from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.runtime import ContainerError, ImageNotFound
from shoal.runtime.image import load as imageload
from shoal.runtime.image.store import Image, ImageStore, find, hex_of, similar_tags

IMAGES = keys.IMAGES
CHUNK = 1 << 20
MAX_UPLOAD = 8 << 30
_log = log.get(__name__)


def record_of(image: Image, holders: list[str]) -> ipb.ImageRecord:
    return ipb.ImageRecord(
        id=image.id, repo_tags=image.repo_tags, layers=image.layers, config_json=json.dumps(image.config),
        size=image.size, loaded_at=image.loaded_at, holders=holders,
    )  # fmt: skip


def image_of(rec: ipb.ImageRecord) -> Image:
    return Image(
        rec.id,
        list(rec.repo_tags),
        list(rec.layers),
        json.loads(rec.config_json or "{}"),
        rec.size,
        rec.loaded_at,
    )


class ImagesServicer(igrpc.ImagesServicer):
    """Serves Images on one manager; ``node_id`` is recorded as a holder of what it loads."""

    def __init__(self, store: Store, data_dir: Path, node_id: str) -> None:
        self.kv = store
        self.writer = Writer(store)
        self.images = ImageStore(str(data_dir / "cluster-images"))
        self.blobs = os.path.join(self.images.root, "blobs")
        self.node_id = node_id

    async def records(self) -> list[ipb.ImageRecord]:
        return [v.obj for v in await objects.images.list(self.kv)]

    async def Load(
        self, request_iterator: AsyncIterator[ipb.ImageChunk], context: grpc.aio.ServicerContext
    ) -> ipb.LoadImageResponse:  # noqa: N802
        self.images.ensure()
        fd, path = tempfile.mkstemp(dir=self.images.tmp_dir, suffix=".upload")
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                async for chunk in request_iterator:
                    size += len(chunk.data)
                    if size > MAX_UPLOAD:
                        await context.abort(
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"image archive larger than {MAX_UPLOAD >> 30} GiB",
                        )
                    f.write(chunk.data)
            try:
                lines, loaded = await asyncio.to_thread(imageload.load_images, self.images, path, self.blobs)
            except ContainerError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            os.unlink(path)
        await self._publish(loaded)
        _log.info("cluster image loaded", images=[i.id for i in loaded])
        return ipb.LoadImageResponse(lines=lines)

    async def _publish(self, loaded: list[Image]) -> None:
        """Write the records; a tag moves off any other image that had it (as ``docker load``)."""
        tags = {t for img in loaded for t in img.repo_tags}
        for rec in await self.records():
            if rec.id in {i.id for i in loaded} or not set(rec.repo_tags) & tags:
                continue
            kept = [t for t in rec.repo_tags if t not in tags]
            del rec.repo_tags[:]
            rec.repo_tags.extend(kept)
            await self.writer.apply(objects.images.put(rec))
        for img in loaded:
            existing = await objects.images.get(self.kv, hex_of(img.id))
            holders = {self.node_id}
            if existing is not None:
                holders |= set(existing.obj.holders)
                img.repo_tags = sorted(set(img.repo_tags) | set(existing.obj.repo_tags))
            img.loaded_at = img.loaded_at or time.time()
            await self.writer.apply(objects.images.put(record_of(img, sorted(holders))))

    async def List(
        self, request: ipb.ListImagesRequest, context: grpc.aio.ServicerContext
    ) -> ipb.ListImagesResponse:  # noqa: N802
        return ipb.ListImagesResponse(images=await self.records())

    async def Resolve(
        self, request: ipb.ResolveImageRequest, context: grpc.aio.ServicerContext
    ) -> ipb.ImageRecord:  # noqa: N802
        records = await self.records()
        try:
            image = find([image_of(r) for r in records], request.ref)
        except ImageNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"image {request.ref} not found in the cluster")
        except ContainerError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return next(r for r in records if r.id == image.id)

    async def known(self, ref: str) -> bool:
        """Whether ``ref`` names an image in the cluster's store (the control API refuses others)."""
        try:
            find([image_of(r) for r in await self.records()], ref)
        except ContainerError:  # ImageNotFound, or a reference that cannot match
            return False
        return True

    async def similar(self, ref: str) -> list[str]:
        """The cluster's tags of the repository ``ref`` names (for a "no such image" that lists them)."""
        return similar_tags([image_of(r) for r in await self.records()], ref)

    def has_blob(self, diff_id: str) -> bool:
        return os.path.isfile(os.path.join(self.blobs, hex_of(diff_id)))

    async def replicate(self, channel: Callable[[str], grpc.aio.Channel], period: float = 2.0) -> None:
        """Forever: copy the blobs this manager lacks from their holders, then become a holder."""
        while True:
            try:
                await self.replicate_once(channel)
            except Exception as exc:  # noqa: BLE001 - never take the manager down; retry next period
                _log.warning("image replication failed; retrying", error=str(exc))
            await asyncio.sleep(period)

    async def replicate_once(self, channel: Callable[[str], grpc.aio.Channel]) -> int:
        """One pass; returns how many images this manager newly holds."""
        added = 0
        for rec in await self.records():
            if self.node_id in rec.holders:
                continue
            addrs = await self._addresses([h for h in rec.holders if h != self.node_id])
            for diff_id in rec.layers:
                if not self.has_blob(diff_id):
                    await self._fetch_blob(diff_id, addrs, channel)
            if await self._add_holder(rec.id):
                added += 1
                _log.info("cluster image replicated", image=rec.id[:19])
        return added

    async def _addresses(self, node_ids: list[str]) -> list[str]:
        addrs = []
        for nid in node_ids:
            got = await objects.managers.get(self.kv, nid)  # live managers only (leased key)
            if got is not None and got.obj.addr:
                addrs.append(got.obj.addr)
        return addrs

    async def _fetch_blob(
        self, diff_id: str, addrs: list[str], channel: Callable[[str], grpc.aio.Channel]
    ) -> None:
        self.images.ensure()
        os.makedirs(self.blobs, 0o700, exist_ok=True)
        for addr in addrs:
            fd, path = tempfile.mkstemp(dir=self.images.tmp_dir, suffix=".blob")
            try:
                sha = hashlib.sha256()
                with os.fdopen(fd, "wb") as f:
                    async with channel(addr) as ch:
                        async for chunk in igrpc.ImagesStub(ch).PullLayer(
                            ipb.PullLayerRequest(diff_id=diff_id)
                        ):
                            sha.update(chunk.data)
                            f.write(chunk.data)
                if "sha256:" + sha.hexdigest() != diff_id:
                    _log.warning("layer refused: digest mismatch", layer=diff_id, manager=addr)
                    continue
                os.rename(path, os.path.join(self.blobs, hex_of(diff_id)))
                return
            except grpc.aio.AioRpcError as exc:
                _log.warning("layer not fetched", layer=diff_id, manager=addr, error=exc.details())
            finally:
                if os.path.exists(path):
                    os.unlink(path)
        raise ContainerError(f"layer {diff_id}: no holder could send it")

    async def _add_holder(self, image_id: str) -> bool:
        """Record this manager as a holder of the image; False when it was one already or the image is gone."""
        added = False

        def with_me(rec: ipb.ImageRecord | None) -> ipb.ImageRecord | None:
            nonlocal added
            added = rec is not None and self.node_id not in rec.holders
            if rec is None or not added:
                return None
            rec.holders.append(self.node_id)
            return rec

        await objects.images.update_retrying(self.writer, hex_of(image_id), with_me)
        return added

    async def PullLayer(
        self, request: ipb.PullLayerRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ipb.ImageChunk]:  # noqa: N802
        name = hex_of(request.diff_id)
        path = os.path.join(self.blobs, name)
        if len(name) != 64 or not all(c in "0123456789abcdef" for c in name) or not os.path.isfile(path):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"layer {request.diff_id} is not on this manager")
        with open(path, "rb") as f:
            while data := await asyncio.to_thread(f.read, CHUNK):
                yield ipb.ImageChunk(data=data)


def peer_channels(certs: CertFiles) -> Callable[[str], grpc.aio.Channel]:
    """mTLS channels to other managers with this manager's node certificate."""

    def channel(addr: str) -> grpc.aio.Channel:
        cert, key, ca = certs.load()
        creds = grpc.ssl_channel_credentials(ca, key, cert)
        return grpc.aio.secure_channel(
            addr, creds, options=[("grpc.ssl_target_name_override", tls.MANAGER_NAME)]
        )

    return channel
