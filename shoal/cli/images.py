"""``shoal image load|ls|inspect|rm`` and ``shoal images``: the node's image store, as docker's.

``load`` takes a ``docker save`` or OCI image-layout tarball, gzip-compressed or not; every layer
is checked against its digest before anything is stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import click
import grpc

from shoal.cli import client
from shoal.cli.aliases import AliasGroup
from shoal.cli.containers_common import ago_text, root_option, run_async, runtime, size_text
from shoal.cli.localonly import refuse_if_remote
from shoal.cli.output import format_table
from shoal.proto import images_pb2 as ipb
from shoal.proto import images_pb2_grpc as igrpc
from shoal.runtime import ContainerError
from shoal.runtime.image import Image


@click.group("image", cls=AliasGroup, aliases={"list": "ls"}, short_help="Manage images")
def image_group() -> None:
    """Manage the images of this node."""


CLUSTER_HELP = "Use the cluster's images (through the manager at --host) instead of this node's"


def _images_stub() -> igrpc.ImagesStub:
    control = client.stub()
    channel = getattr(control, "_channel", None)
    if channel is None:
        raise click.ClickException("this manager connection cannot reach the Images API")
    return igrpc.ImagesStub(channel)


def _chunks(path: str) -> Iterator[ipb.ImageChunk]:
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            yield ipb.ImageChunk(data=data)


@image_group.command("load", short_help="Load an image from a tar archive")
@click.option(
    "-i",
    "--input",
    "path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Read from tar archive file (docker save or OCI layout, gzip or not)",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress the load output")
@click.option(
    "--cluster",
    is_flag=True,
    help="Store the image in the cluster: managers keep it, workers pull it when a task needs it",
)
@root_option
def load_command(path: str, quiet: bool, cluster: bool, root: str) -> None:
    """Load an image tarball into this node's image store, or (--cluster) into the cluster."""
    if not cluster:
        refuse_if_remote(click.get_current_context(), "image load")
    try:
        open(path, "rb").close()
    except OSError as exc:
        raise click.ClickException(f"open {path}: {exc.strerror}") from None
    if cluster:
        try:
            lines = list(_images_stub().Load(_chunks(path), timeout=600).lines)
        except grpc.RpcError as err:
            raise click.ClickException(err.details() or str(err)) from None
    else:
        lines = _load_local(root, path)
    if not quiet:
        for line in lines:
            click.echo(line)


@run_async
async def _load_local(root: str, path: str) -> list[str]:
    return await runtime(root).load_image(path)


def _created(image: Image) -> str:
    try:
        ts = datetime.fromisoformat(image.created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "N/A"
    return ago_text(ts, time.time())


def _rows(images: list[Image], no_trunc: bool) -> list[list[str]]:
    rows = []
    for img in sorted(images, key=lambda i: i.created, reverse=True):
        short = img.id if no_trunc else img.id[7:19]
        for tag in img.repo_tags or ["<none>:<none>"]:
            repo, _, t = tag.rpartition(":")
            rows.append([repo, t, short, _created(img), size_text(img.size)])
    return rows


@image_group.command("ls", short_help="List images")
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output")
@click.option("--cluster", is_flag=True, help=CLUSTER_HELP)
@root_option
def ls_command(quiet: bool, no_trunc: bool, cluster: bool, root: str) -> None:
    """List the images of this node (or of the cluster)."""
    if not cluster:
        refuse_if_remote(click.get_current_context(), "image ls")
    if cluster:
        try:
            records = _images_stub().List(ipb.ListImagesRequest(), timeout=30).images
        except grpc.RpcError as err:
            raise click.ClickException(err.details() or str(err)) from None
        images = [
            Image(r.id, list(r.repo_tags), list(r.layers), json.loads(r.config_json or "{}"), r.size)
            for r in records
        ]
    else:
        images = _list_local(root)
    if quiet:
        for img in images:
            click.echo(img.id if no_trunc else img.id[7:19])
        return
    click.echo(format_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], _rows(images, no_trunc)))


@run_async
async def _list_local(root: str) -> list[Image]:
    async with runtime(root) as rt:
        return await rt.images()


@image_group.command("inspect", short_help="Display detailed information on one or more images")
@click.argument("images", nargs=-1, required=True)
@root_option
@run_async
async def inspect_command(images: tuple[str, ...], root: str) -> None:
    """Print images as a JSON array (docker's field names)."""
    refuse_if_remote(click.get_current_context(), "image inspect")
    out, errors = [], []
    async with runtime(root) as rt:
        for ref in images:
            try:
                img = await rt.inspect_image(ref)
            except ContainerError as exc:
                errors.append(str(exc))
                continue
            out.append({
                "Id": img.id, "RepoTags": img.repo_tags, "Created": img.created, "Size": img.size,
                "Architecture": img.config.get("architecture", ""), "Os": img.config.get("os", ""),
                "Config": img.runtime_config, "RootFS": {"Type": "layers", "Layers": img.layers},
            })  # fmt: skip
    click.echo(json.dumps(out, indent=4))
    if errors:
        raise click.ClickException("\n".join(errors))


@image_group.command("rm", short_help="Remove one or more images")
@click.argument("images", nargs=-1, required=True)
@root_option
@run_async
async def rm_command(images: tuple[str, ...], root: str) -> None:
    """Untag or remove images; refused while a container (even a stopped one) uses the image."""
    refuse_if_remote(click.get_current_context(), "image rm")
    errors = []
    async with runtime(root) as rt:
        for ref in images:
            try:
                for line in await rt.remove_image(ref):
                    click.echo(line)
            except ContainerError as exc:
                errors.append(str(exc))
    if errors:
        raise click.ClickException("\n".join(errors))


images_command = click.Command(
    "images", callback=ls_command.callback, params=ls_command.params, short_help="List images (alias of `image ls`)",
    help="List the images of this node (alias of `shoal image ls`).",
)  # fmt: skip
