"""A worker fetches a cluster image it lacks: resolve it on a manager, pull the missing layers.

Called by the runtime executor while the task is PREPARING, so the task only moves to STARTING
once the image is complete. Each layer arrives as its uncompressed tar over a gRPC stream into the
image store's tmp dir, is checked against its diff_id and extracted (``imageload.add_layer``); the
image record goes into the node's store last. Managers are tried in turn (a manager that does not
hold a layer answers NOT_FOUND).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence

import grpc

from shoal import log
from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.runtime import ImageLoadError
from shoal.runtime.image import Image, ImageStore
from shoal.runtime.image import load as imageload

_log = log.get(__name__)
CALL_TIMEOUT_S = 10.0


class ImagePuller:
    """``await puller(ref)`` -> True once the image is in the node's store, False if the cluster lacks it."""

    def __init__(
        self,
        managers: Callable[[], Sequence[str]],
        channel: Callable[[str], grpc.aio.Channel],
        image_root: str,
    ) -> None:
        self.managers = managers
        self.channel = channel
        self.store = ImageStore(image_root)
        self._lock = asyncio.Lock()

    async def __call__(self, ref: str) -> bool:
        async with self._lock:  # one pull at a time: two tasks of one service share the layers
            rec = await self._resolve(ref)
            if rec is None:
                return False
            for diff_id in rec.layers:
                if not self.store.has_layer(diff_id):
                    await self._pull_layer(diff_id)
            image = Image(
                rec.id,
                list(rec.repo_tags),
                list(rec.layers),
                json.loads(rec.config_json or "{}"),
                rec.size,
                time.time(),
            )
            await asyncio.to_thread(self._commit, image)
            _log.info("pulled image", image=ref, id=rec.id[:19], layers=len(rec.layers))
            return True

    def _commit(self, image: Image) -> None:
        with self.store.locked():
            self.store.commit(image)

    async def _resolve(self, ref: str) -> ipb.ImageRecord | None:
        errors = []
        for addr in self.managers():
            async with self.channel(addr) as ch:
                try:
                    return await igrpc.ImagesStub(ch).Resolve(
                        ipb.ResolveImageRequest(ref=ref), timeout=CALL_TIMEOUT_S
                    )
                except grpc.aio.AioRpcError as exc:
                    if exc.code() == grpc.StatusCode.NOT_FOUND:
                        return None
                    errors.append(f"{addr}: {exc.details()}")
        raise ImageLoadError(f"cannot resolve image {ref}: {'; '.join(errors) or 'no manager known'}")

    async def _pull_layer(self, diff_id: str) -> None:
        self.store.ensure()
        errors = []
        for addr in self.managers():
            fd, path = tempfile.mkstemp(dir=self.store.tmp_dir, suffix=".layer")
            try:
                with os.fdopen(fd, "wb") as f:
                    async with self.channel(addr) as ch:
                        async for chunk in igrpc.ImagesStub(ch).PullLayer(
                            ipb.PullLayerRequest(diff_id=diff_id)
                        ):
                            f.write(chunk.data)
                await asyncio.to_thread(imageload.add_layer, self.store, diff_id, path)  # verifies the digest
                return
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{addr}: {exc.details()}")
            finally:
                os.unlink(path)
        raise ImageLoadError(f"cannot pull layer {diff_id}: {'; '.join(errors) or 'no manager known'}")


def for_node(managers: Sequence[str], certs_dir: str | os.PathLike[str], image_root: str) -> ImagePuller:
    """A puller using this node's certificate (mutual TLS) to reach ``managers``."""
    from shoal.certfiles import CertFiles
    from shoal.worker.join import NodeCredentials

    creds = NodeCredentials(CertFiles(certs_dir))
    return ImagePuller(lambda: list(managers), creds.channel, image_root)
