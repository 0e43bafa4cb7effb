"""Networks as objects: create (the subnet and VXLAN id from the address plan), remove, the built-in ingress.

A network is two records that must agree: its entry in the address plan (``IpamStore``: subnet, VXLAN
id, who holds which address) and its ``Network`` object (what the control API lists and services point
at). Creation takes the plan entry first (that is where overlapping subnets and taken names are
refused, with nothing written), then writes the object; if the object cannot be written the plan entry
is given back. Removal goes the other way. Shared by the control API and the leader's allocator (which
makes sure the ``ingress`` network exists), so it lives beside them rather than in either.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

from shoal.ids import new_id
from shoal.manager.ipam import INGRESS, IpamError, IpamStore
from shoal.manager.ipam.allocator import Ipam
from shoal.manager.store import objects
from shoal.manager.store.base import Store
from shoal.manager.store.writes import Conflict, Writer
from shoal.proto import types_pb2 as pb

DRIVERS = ("overlay",)
NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$")


class NetworkError(Exception):
    """A network request that cannot be done; ``kind`` picks the gRPC code (invalid, exists, in-use, missing)."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


def check_spec(spec: pb.NetworkSpec) -> None:
    """Refuse a bad name or driver with one message (the subnet is checked by the address plan)."""
    if not spec.name:
        raise NetworkError("invalid network spec: name: a network needs a name")
    if not NAME.match(spec.name):
        raise NetworkError(
            f"invalid network name {spec.name!r}: use letters, digits, '_', '.' and '-' (up to 63, not starting with a symbol)"
        )
    if spec.driver and spec.driver not in DRIVERS:
        raise NetworkError(f"invalid network driver {spec.driver!r}: only {', '.join(DRIVERS)} is supported")
    if spec.ingress != (spec.name == INGRESS):
        raise NetworkError(f"the name {INGRESS!r} is reserved for the built-in routing-mesh network")


def _object(spec: pb.NetworkSpec, ipam: Ipam) -> pb.Network:
    got = ipam.network(spec.name)
    net = pb.Network(
        id=new_id(),
        spec=spec,
        subnet=str(got.subnet),
        gateway=str(got.gateway),
        vxlan_id=got.vxlan_id,
        vip_block=str(got.vip_block),
    )
    net.spec.driver = net.spec.driver or "overlay"
    net.meta.created_at_ns = net.meta.updated_at_ns = time.time_ns()
    return net


async def create(
    store: Store, plan: IpamStore, spec: pb.NetworkSpec, writer: Writer | None = None
) -> tuple[pb.Network, int]:
    """Create the network: the plan entry, then the object. Returns it and the store revision written."""
    check_spec(spec)
    if await objects.networks.lookup(store, objects.NETWORK_NAME, spec.name) is not None:
        raise NetworkError(f"network with name {spec.name} already exists", "exists")

    def add(ipam: Ipam) -> pb.Network:
        if spec.name in ipam.networks and not spec.ingress and not forget(ipam, spec.name):
            raise IpamError(f"network {spec.name} is still being removed (tasks that were on it are stopping); try again")
        if not (spec.ingress and spec.name in ipam.networks):  # a built-in ingress left half-made is taken over
            ipam.create_network(spec.name, spec.subnet or None)
        return _object(spec, ipam)

    try:
        net = await plan.update(add)
    except IpamError as exc:
        kind = "exists" if "already exists" in str(exc) else "invalid"
        raise NetworkError(str(exc), kind) from None
    try:
        rev = await (writer or Writer(store)).apply(objects.networks.create(net))
    except Conflict:
        await plan.update(lambda ipam: ipam.remove_network(spec.name))
        raise NetworkError(f"network with name {spec.name} already exists", "exists") from None
    return net, rev


def find_network(nets: dict[str, pb.Network], ref: str) -> pb.Network | None:
    """By full id, then name, then unique id prefix (docker's order)."""
    if ref in nets:
        return nets[ref]
    named = [n for n in nets.values() if n.spec.name == ref]
    if len(named) == 1:
        return named[0]
    pref = [n for nid, n in nets.items() if nid.startswith(ref)] if ref else []
    return pref[0] if len(pref) == 1 else None


def containers_on(net: pb.Network, attachments: Iterable[pb.ContainerAttachment],
                  addresses: Callable[[str], pb.TaskAddresses | None]) -> list[pb.ContainerAttachment]:
    """The standalone containers attached to ``net`` (``shoal run --network``), each with its address."""
    out = []
    for att in attachments:
        if att.network_id != net.id:
            continue
        view = pb.ContainerAttachment()
        view.CopyFrom(att)
        rec = addresses(att.id)
        view.address = next((a.address for a in rec.networks if a.network_id == net.id), "") if rec else ""
        out.append(view)
    return sorted(out, key=lambda a: (a.container_name, a.id))


def users(net: pb.Network, services: list[pb.Service]) -> list[str]:
    """Names of the services on ``net`` (attached, or publishing through ingress)."""
    out = []
    for svc in services:
        on = any(a.target in (net.id, net.spec.name) for a in svc.spec.networks)
        if net.spec.ingress:
            on = any(p.publish_mode == pb.PortConfig.INGRESS for p in svc.spec.ports)
        if on:
            out.append(svc.spec.name)
    return sorted(out)


async def remove(store: Store, plan: IpamStore, net: pb.Network, rev: int, services: list[pb.Service],
                 containers: Iterable[pb.ContainerAttachment] = ()) -> int:
    """Remove the network unless a service or a standalone container uses it.

    Its subnet and VXLAN id are given back at once when nothing holds an address in it, else by the
    allocator once the tasks of removed services that still hold one have ended (``decide.release_stale``).
    """
    using = users(net, services)
    if using:
        more = f" and {len(using) - 3} more" if len(using) > 3 else ""
        raise NetworkError(f"network {net.spec.name} is in use by service {', '.join(using[:3])}{more}", "in-use")
    attached = sorted(a.container_name or a.container_id[:12] for a in containers if a.network_id == net.id)
    if attached:
        raise NetworkError(f"error while removing network: network {net.spec.name} id {net.id} has active endpoints "
                           f"(containers {', '.join(attached[:3])})", "in-use")
    try:
        written = await Writer(store).apply(objects.networks.delete(net, rev))
    except Conflict:
        raise NetworkError(f"network {net.spec.name} changed while it was being removed; try again", "in-use") from None
    await plan.update(lambda ipam: forget(ipam, net.spec.name))
    return written


def forget(ipam: Ipam, name: str) -> bool:
    """Mark a network removed and drop it from the plan once only nodes' addresses are left; True if dropped.

    Only a network marked removed is ever dropped by the allocator (``decide.drop_removed``): a network
    being created has its plan entry before its object, and a pass in between must leave it alone.
    """
    got = ipam.networks.get(name)
    if got is not None:
        got.removed = True
    if got is None or any(not o.startswith("node:") for o in got.addresses.owners.values()):
        return False
    got.addresses.clear()
    ipam.remove_network(name)
    return True


async def ensure_ingress(store: Store, plan: IpamStore, writer: Writer | None = None) -> pb.Network:
    """The built-in ``ingress`` network, created on first use (the first leader of a cluster)."""
    found = await objects.networks.lookup(store, objects.NETWORK_NAME, INGRESS)
    if found is not None:
        return found.obj
    spec = pb.NetworkSpec(name=INGRESS, driver="overlay", ingress=True)
    spec.labels["shoal.network.builtin"] = "true"
    try:
        return (await create(store, plan, spec, writer))[0]
    except NetworkError:
        found = await objects.networks.lookup(store, objects.NETWORK_NAME, INGRESS)  # another manager made it
        if found is None:
            raise
        return found.obj
