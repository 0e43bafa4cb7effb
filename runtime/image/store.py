"""The node's image store: extracted layers by content digest, image metadata by config digest.

Layout (one ``image_root`` per node, shared by every runtime that names it)::

    image_root/lock                     flock held while the store's metadata changes
    image_root/layers/<diff_id hex>/    one extracted layer (overlay whiteouts already converted)
    image_root/images/<id hex>.json     an image: its config, layer diff_ids, tags, size
    image_root/tmp/                     extractions in progress (removed on failure/next load)

A layer directory only appears (by rename) once its content has been verified against its digest,
so a crash never leaves a half layer under ``layers/``. Image files are replaced atomically.
Readers (the launcher resolving an image at create) need no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

from shoal.runtime.errors import ConfigError, ContainerError, ImageNotFound
from shoal.runtime.image import ref as refs


@dataclass
class Image:
    """One image in the store."""

    id: str
    """``sha256:<hex>`` of the image config (docker's IMAGE ID)."""
    repo_tags: list[str]
    layers: list[str]
    """Layer diff_ids (``sha256:<hex>``), bottom first."""
    config: dict
    """The image config JSON (``config``, ``rootfs``, ``created``, ``architecture``, ...)."""
    size: int = 0
    loaded_at: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def created(self) -> str:
        return str(self.config.get("created", ""))

    @property
    def runtime_config(self) -> dict:
        """The ``config`` section: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts."""
        return self.config.get("config") or {}

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "repo_tags": self.repo_tags,
            "layers": self.layers,
            "config": self.config,
            "size": self.size,
            "loaded_at": self.loaded_at,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Image:
        return cls(
            id=data["id"],
            repo_tags=list(data.get("repo_tags") or []),
            layers=list(data["layers"]),
            config=dict(data.get("config") or {}),
            size=int(data.get("size", 0)),
            loaded_at=float(data.get("loaded_at", 0.0)),
        )


def similar_tags(images: list[Image], ref_text: str) -> list[str]:
    """The loaded tags of the repository ``ref_text`` names (``busybox`` -> ``busybox:1.36``, ...), for
    an "image not found" that says what is there instead."""
    name = ref_text.split("@", 1)[0]
    if ":" in name.rsplit("/", 1)[-1]:
        name = name.rsplit(":", 1)[0]
    bare = name.removeprefix("docker.io/").removeprefix("library/")
    tags = {t for i in images for t in i.repo_tags}
    return sorted(t for t in tags if t.rsplit(":", 1)[0].removeprefix("docker.io/").removeprefix("library/") == bare)


def not_found(images: list[Image], ref_text: str) -> str:
    """``image busybox not found`` plus the loaded tags of that repository when there are any."""
    tags = similar_tags(images, ref_text)
    return f"image {ref_text} not found" + (f" (loaded: {', '.join(tags)})" if tags else "")


def find(images: list[Image], ref_text: str) -> Image:
    """The image ``ref_text`` names among ``images`` (docker's lookup: tag, digest, id prefix)."""
    try:
        ref = refs.parse_ref(ref_text)
    except ConfigError:
        raise ImageNotFound(f"image {ref_text} not found (invalid reference)") from None
    if ref.id_prefix:
        matches = [i for i in images if hex_of(i.id).startswith(ref.id_prefix)]
        if len(matches) > 1:
            raise ConfigError(f"image id prefix {ref_text} is ambiguous")
        if matches:
            return matches[0]
        if refs.NAME_RE.fullmatch(ref_text):  # a short hex-looking name, e.g. "abcdef"
            ref = refs.parse_ref(ref_text, allow_id=False)
    if ref.digest:
        for img in images:
            if img.id == ref.digest:
                return img
    else:
        tag = f"{ref.name}:{ref.tag}"
        for img in images:
            if tag in img.repo_tags:
                return img
    raise ImageNotFound(not_found(images, ref_text))


def hex_of(digest: str) -> str:
    return digest.removeprefix("sha256:")


class ImageStore:
    """Paths and metadata operations of one image root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.layers_dir = os.path.join(self.root, "layers")
        self.images_dir = os.path.join(self.root, "images")
        self.tmp_dir = os.path.join(self.root, "tmp")

    def ensure(self) -> None:
        for d in (self.root, self.layers_dir, self.images_dir, self.tmp_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.ensure()
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def layer_path(self, diff_id: str) -> str:
        return os.path.join(self.layers_dir, hex_of(diff_id))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_path(diff_id))

    def _image_file(self, image_id: str) -> str:
        return os.path.join(self.images_dir, hex_of(image_id) + ".json")

    def images(self) -> list[Image]:
        found = []
        try:
            names = sorted(os.listdir(self.images_dir))
        except FileNotFoundError:
            return []
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.images_dir, name), encoding="utf-8") as f:
                    found.append(Image.from_dict(json.load(f)))
            except (OSError, ValueError, KeyError):
                continue
        return found

    def get(self, ref_text: str) -> Image:
        """Find an image by ``name[:tag]``, ``name@sha256:..`` or id (prefix); ImageNotFound if absent."""
        return find(self.images(), ref_text)

    def lowerdirs(self, image: Image) -> list[str]:
        """overlayfs ``lowerdir`` entries, top layer first; checks every layer is present."""
        dirs = []
        for diff_id in reversed(image.layers):
            path = self.layer_path(diff_id)
            if not os.path.isdir(path):
                raise ImageNotFound(f"image {image.id[:19]}: layer {diff_id} is missing from the store")
            dirs.append(path)
        return dirs

    def commit(self, image: Image) -> list[str]:
        """Store ``image`` (its layers already in place); moves its tags off other images.

        Returns the ids of images that lost their last tag. Call with the lock held.
        """
        untagged = []
        for other in self.images():
            if other.id == image.id:
                image.repo_tags = sorted(set(image.repo_tags) | set(other.repo_tags))
                continue
            kept = [t for t in other.repo_tags if t not in image.repo_tags]
            if kept != other.repo_tags:
                other.repo_tags = kept
                self._write(other)
                if not kept:
                    untagged.append(other.id)
        self._write(image)
        return untagged

    def _write(self, image: Image) -> None:
        path = self._image_file(image.id)
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(image.to_dict(), f)
        os.replace(tmp, path)

    def remove(self, image: Image, tag: str | None = None) -> list[str]:
        """Untag (``tag``) or delete ``image`` and its unshared layers; returns what was done.

        Call with the lock held, after checking that no container uses the image.
        """
        if tag and len(image.repo_tags) > 1:
            image.repo_tags = [t for t in image.repo_tags if t != tag]
            self._write(image)
            return [f"Untagged: {tag}"]
        done = [f"Untagged: {t}" for t in image.repo_tags]
        os.unlink(self._image_file(image.id))
        used = {d for other in self.images() for d in other.layers}
        for diff_id in image.layers:
            if diff_id not in used and self.has_layer(diff_id):
                remove_tree(self.layer_path(diff_id))
                done.append(f"Deleted: {diff_id}")
        done.append(f"Deleted: {image.id}")
        return done


def remove_tree(path: str) -> None:
    """rm -rf that also copes with the mode-000 dirs overlayfs leaves in work dirs."""

    def onerror(func: object, p: str, exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        try:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        except FileNotFoundError:
            pass
        except OSError as err:
            raise ContainerError(f"cannot remove {p}: {err.strerror}") from None

    shutil.rmtree(path, onerror=onerror)
