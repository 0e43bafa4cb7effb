"""Cluster images: the manager side of ``shoal image load --cluster`` and of a worker's image pull.

``Load`` receives an image tarball from the CLI, verifies and extracts it with the runtime's image
loader into this manager's store (``<data-dir>/cluster-images``), keeping every layer's
uncompressed tar as a blob named by its diff_id, and writes one record per image to etcd
(``/shoal/v1/images/<id>``: tags, layers, config, and the managers holding the blobs). ``Resolve``
and ``List`` read those records; ``PullLayer`` streams a blob this manager holds (NOT_FOUND
otherwise, so a worker tries the next manager). Blobs are not yet copied between managers: a
layer is on the disk of the manager that received the ``Load``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from shoal import log
from shoal.manager import keys
from shoal.manager.store.base import Store
from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.runtime import ContainerError, ImageNotFound, imageload
from shoal.runtime.imagestore import Image, ImageStore, find, hex_of

IMAGES = keys.PREFIX + "images/"
CHUNK = 1 << 20
MAX_UPLOAD = 8 << 30
_log = log.get(__name__)


def record_of(image: Image, holders: list[str]) -> ipb.ImageRecord:
    return ipb.ImageRecord(
        id=image.id, repo_tags=image.repo_tags, layers=image.layers, config_json=json.dumps(image.config),
        size=image.size, loaded_at=image.loaded_at, holders=holders,
    )  # fmt: skip


def image_of(rec: ipb.ImageRecord) -> Image:
    return Image(rec.id, list(rec.repo_tags), list(rec.layers), json.loads(rec.config_json or "{}"), rec.size, rec.loaded_at)


class ImagesServicer(igrpc.ImagesServicer):
    """Serves Images on one manager; ``node_id`` is recorded as a holder of what it loads."""

    def __init__(self, store: Store, data_dir: Path, node_id: str) -> None:
        self.kv = store
        self.images = ImageStore(str(data_dir / "cluster-images"))
        self.blobs = os.path.join(self.images.root, "blobs")
        self.node_id = node_id

    async def records(self) -> list[ipb.ImageRecord]:
        out = []
        for kv in (await self.kv.range(IMAGES)).kvs:
            rec = ipb.ImageRecord()
            rec.ParseFromString(kv.value)
            out.append(rec)
        return out

    async def Load(self, request_iterator: AsyncIterator[ipb.ImageChunk], context: grpc.aio.ServicerContext) -> ipb.LoadImageResponse:  # noqa: N802
        self.images.ensure()
        fd, path = tempfile.mkstemp(dir=self.images.tmp_dir, suffix=".upload")
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                async for chunk in request_iterator:
                    size += len(chunk.data)
                    if size > MAX_UPLOAD:
                        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"image archive larger than {MAX_UPLOAD >> 30} GiB")
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
            await self.kv.put(IMAGES + hex_of(rec.id), rec.SerializeToString())
        for img in loaded:
            existing = await self.kv.get(IMAGES + hex_of(img.id))
            holders = {self.node_id}
            if existing is not None:
                old = ipb.ImageRecord()
                old.ParseFromString(existing.value)
                holders |= set(old.holders)
                img.repo_tags = sorted(set(img.repo_tags) | set(old.repo_tags))
            img.loaded_at = img.loaded_at or time.time()
            await self.kv.put(IMAGES + hex_of(img.id), record_of(img, sorted(holders)).SerializeToString())

    async def List(self, request: ipb.ListImagesRequest, context: grpc.aio.ServicerContext) -> ipb.ListImagesResponse:  # noqa: N802
        return ipb.ListImagesResponse(images=await self.records())

    async def Resolve(self, request: ipb.ResolveImageRequest, context: grpc.aio.ServicerContext) -> ipb.ImageRecord:  # noqa: N802
        records = await self.records()
        try:
            image = find([image_of(r) for r in records], request.ref)
        except ImageNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"image {request.ref} not found in the cluster")
        except ContainerError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return next(r for r in records if r.id == image.id)

    async def PullLayer(self, request: ipb.PullLayerRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[ipb.ImageChunk]:  # noqa: N802
        name = hex_of(request.diff_id)
        path = os.path.join(self.blobs, name)
        if len(name) != 64 or not all(c in "0123456789abcdef" for c in name) or not os.path.isfile(path):
            await context.abort(grpc.StatusCode.NOT_FOUND, f"layer {request.diff_id} is not on this manager")
        with open(path, "rb") as f:
            while data := await asyncio.to_thread(f.read, CHUNK):
                yield ipb.ImageChunk(data=data)
