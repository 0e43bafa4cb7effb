"""What the network allocator hands out, decided on plain data: one pure pass over a snapshot.

``allocate(ipam, snapshot)`` brings the address plan (``Ipam``, changed in place) in line with the
cluster and returns the records the allocator stores, which the control API and the dispatcher merge
into what they show and send:

* every node gets a task subnet (``NodeNetworkInfo``), and an address on ingress and on each network
  one of its live tasks is on; a node that is gone gives its subnet back;
* every service gets a VIP on each network it is attached to (none with DNSRR) and on ingress when it
  publishes an ingress port, and its published ports (``ServiceEndpoint``);
* every live task (not yet terminal) gets an address on each of its networks as soon as it exists
  and one on its node's subnet once it is placed (``TaskAddresses``, written whole when complete);
  a standalone container's attachment to an attachable network (``shoal run --network``) is one more
  such task, already placed on its node (``as_task``), as swarmkit's network-attachment tasks are;
* a task that ended or is gone, a VIP no longer wanted, a node that left: their addresses are released
  (and handed out again last: see ``AddressSpace``).

``allocate_tasks(ipam, snapshot, ids)`` is the same pass over a few tasks only, for the common change (tasks
created, placed or ended while nothing else changed): what it decides is what the whole pass would, so a
whole pass after it changes nothing. It declines (None) a task on a network other than ingress, whose
node's networks may change with it.

Allocation is idempotent per owner, so a pass re-run after a lost race, or on a new leader, gives the
same answers. An allocation that fails (a full subnet) is reported in ``Plan.problems`` and the others
go on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from shoal.manager.ipam import Ipam, IpamError, ports
from shoal.manager.ipam.allocator import node_owner, vip_owner
from shoal.proto import types_pb2 as pb
from shoal.taskstate import TERMINAL


@dataclass
class Snapshot:
    """The cluster as the allocator sees it: objects by id, tasks with their effective state."""

    networks: dict[str, pb.Network] = field(default_factory=dict)
    services: dict[str, pb.Service] = field(default_factory=dict)
    tasks: dict[str, tuple[pb.Task, int]] = field(default_factory=dict)
    nodes: dict[str, pb.Node] = field(default_factory=dict)
    endpoints: dict[str, pb.ServiceEndpoint] = field(default_factory=dict)  # as recorded (picked ports stay)
    _ingress: tuple[tuple[str, ...], pb.Network | None] | None = field(default=None, init=False, repr=False, compare=False)

    def ingress(self) -> pb.Network | None:
        ids = tuple(self.networks)
        if self._ingress is None or self._ingress[0] != ids:  # asked for every task of a pass
            self._ingress = (ids, next((n for n in self.networks.values() if n.spec.ingress), None))
        return self._ingress[1]


@dataclass
class Plan:
    """The records to store, by object id, and what could not be allocated (object id -> why)."""

    endpoints: dict[str, pb.ServiceEndpoint] = field(default_factory=dict)
    addresses: dict[str, pb.TaskAddresses] = field(default_factory=dict)
    nodenets: dict[str, pb.NodeNetworkInfo] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # ``allocate_tasks``: tasks whose addresses were given back


def underlay_of(addr: str) -> str:
    """The host part of a node's address (``10.0.0.5:41234`` -> ``10.0.0.5``)."""
    host = addr.removeprefix("ipv4:")
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def attached(spec: pb.ServiceSpec, snap: Snapshot) -> list[tuple[pb.Network, list[str]]]:
    """The networks a service (or task) spec is on, ingress included when it publishes an ingress port."""
    out = []
    for att in spec.networks:
        net = snap.networks.get(att.target)
        if net is not None and not net.spec.ingress:
            out.append((net, list(att.aliases)))
    ingress = snap.ingress()
    if ingress is not None and ports.ingress_ports(spec):
        out.append((ingress, []))
    return sorted(out, key=lambda na: na[0].spec.name)


def vip_networks(spec: pb.ServiceSpec, snap: Snapshot) -> set[str]:
    """The names of the networks a service has a VIP on: all of its networks, only ingress with DNSRR."""
    return {n.spec.name for n, _ in attached(spec, snap) if spec.endpoint_mode == pb.VIP or n.spec.ingress}


def as_task(att: pb.ContainerAttachment) -> pb.Task:
    """A container's attachment as the pass sees it: a running task on its node, on that one network."""
    spec = pb.ServiceSpec()
    spec.networks.add(target=att.network_id)
    return pb.Task(id=att.id, node_id=att.node_id, spec=spec, desired_state=pb.RUNNING)


def with_attachments(tasks: dict[str, tuple[pb.Task, int]],
                     attachments: dict[str, pb.ContainerAttachment]) -> dict[str, tuple[pb.Task, int]]:
    """``tasks`` plus the attachments as running tasks (an attachment and a task never share an id)."""
    return {**tasks, **{aid: (as_task(att), pb.RUNNING) for aid, att in attachments.items()}}


def _live(snap: Snapshot) -> dict[str, pb.Task]:
    return {tid: t for tid, (t, state) in snap.tasks.items() if state < TERMINAL}


def release_stale(ipam: Ipam, snap: Snapshot) -> None:
    """Give back what nobody holds any more: gone nodes, ended tasks, VIPs no service wants."""
    for node_id in [n for n in ipam.nodes if n not in snap.nodes]:
        ipam.release_node(node_id)
    live = _live(snap)
    wanted_vips = {vip_owner(sid): vip_networks(s.spec, snap) for sid, s in snap.services.items()}
    for space in ipam.nodes.values():
        for owner in [o for o in space.owners.values() if o not in live]:
            space.release(owner)
    nodes_on: dict[str, set[str]] = {}  # network name -> node owners with a live task on it
    for t in live.values():
        for net, _ in attached(t.spec, snap) if t.node_id else ():
            nodes_on.setdefault(net.spec.name, set()).add(node_owner(t.node_id))
    ingress = snap.ingress()
    for name, pool in ipam.networks.items():
        for owner in list(pool.addresses.owners.values()):
            if owner.startswith("node:"):
                if owner not in nodes_on.get(name, set()) and not (
                    ingress is not None and name == ingress.spec.name
                ):
                    pool.addresses.release(owner)
                continue
            if owner.startswith("vip:"):
                if name not in wanted_vips.get(owner, set()):
                    pool.addresses.release(owner)
            elif owner not in live:
                pool.addresses.release(owner)
    drop_removed(ipam, snap, live)


def drop_removed(ipam: Ipam, snap: Snapshot, live: dict[str, pb.Task]) -> None:
    """Networks removed while tasks of removed services still held addresses: free them once those ended."""
    names = {n.spec.name for n in snap.networks.values()}
    for name in [n for n, net in ipam.networks.items() if net.removed and n not in names]:
        gone = ipam.networks[name]
        for owner in [o for o in gone.addresses.owners.values() if not o.startswith("node:") and o not in live]:
            gone.addresses.release(owner)
        if all(o.startswith("node:") for o in gone.addresses.owners.values()):
            gone.addresses.clear()
            ipam.remove_network(name)


def _iface(ipam: Ipam, network: str, addr: ipaddress.IPv4Address) -> str:
    return f"{addr}/{ipam.network(network).subnet.prefixlen}"


def endpoint(ipam: Ipam, svc: pb.Service, snap: Snapshot, picked: list[pb.PortConfig]) -> pb.ServiceEndpoint:
    """The service's VIPs (allocated here) and its ports as picked."""
    rec = pb.ServiceEndpoint(service_id=svc.id, spec_version=svc.spec_version)
    rec.endpoint.mode = svc.spec.endpoint_mode
    rec.endpoint.ports.extend(picked)
    wanted = vip_networks(svc.spec, snap)
    for net, _aliases in attached(svc.spec, snap):
        if net.spec.name not in wanted:
            continue
        vip = ipam.vip(svc.id, net.spec.name)
        rec.endpoint.virtual_ips.add(
            network_id=net.id, network=net.spec.name, addr=_iface(ipam, net.spec.name, vip)
        )
    return rec


def task_addresses(ipam: Ipam, task: pb.Task, snap: Snapshot) -> pb.TaskAddresses | None:
    """A task's addresses; None until it is placed on a node that has a subnet (nothing half-done is stored)."""
    nets = [
        (n, aliases, ipam.network_address_text(n.spec.name, task.id)) for n, aliases in attached(task.spec, snap)
    ]
    if not task.node_id or task.node_id not in snap.nodes:
        return None
    rec = pb.TaskAddresses(
        task_id=task.id, node_id=task.node_id, bridge_address=ipam.task_address_text(task.node_id, task.id)
    )
    for net, aliases, addr in nets:
        rec.networks.add(network_id=net.id, network=net.spec.name, address=addr, aliases=aliases)
    return rec


def node_info(ipam: Ipam, node: pb.Node, on: set[str], snap: Snapshot) -> pb.NodeNetworkInfo:
    """The node's subnet, bridge address, underlay and its address on each network it is ``on`` (ids)."""
    space = ipam.node_subnet(node.id)
    info = pb.NodeNetworkInfo(
        subnet=str(space.subnet),
        gateway=f"{space.gateway}/{space.subnet.prefixlen}",
        underlay=underlay_of(node.description.addr),
    )
    for net in sorted((snap.networks[i] for i in on if i in snap.networks), key=lambda n: n.spec.name):
        if net.spec.name in ipam.networks:
            addr = ipam.network_address_text(net.spec.name, node_owner(node.id))
            info.overlays.add(network_id=net.id, network=net.spec.name, address=addr)
    return info


def allocate(ipam: Ipam, snap: Snapshot) -> Plan:
    """One pass: release what is stale, then allocate everything the snapshot needs (see the module docstring)."""
    plan = Plan()
    release_stale(ipam, snap)
    picked = ports.assign(list(snap.services.values()), snap.endpoints)
    for sid, svc in sorted(snap.services.items()):
        try:
            plan.endpoints[sid] = endpoint(ipam, svc, snap, picked[sid])
        except IpamError as exc:
            plan.problems[sid] = str(exc)
    for node_id in sorted(snap.nodes):
        try:
            ipam.node_subnet(node_id)
        except IpamError as exc:
            plan.problems[node_id] = str(exc)
    on: dict[str, set[str]] = {}
    for tid, task in sorted(_live(snap).items()):
        try:
            rec = task_addresses(ipam, task, snap)
        except IpamError as exc:
            plan.problems[tid] = str(exc)
            continue
        if rec is not None:
            plan.addresses[tid] = rec
            on.setdefault(rec.node_id, set()).update(a.network_id for a in rec.networks)
    ingress = snap.ingress()
    for node_id, node in sorted(snap.nodes.items()):
        if node_id in plan.problems:
            continue
        nets = on.get(node_id, set()) | ({ingress.id} if ingress is not None else set())
        try:
            plan.nodenets[node_id] = node_info(ipam, node, nets, snap)
        except IpamError as exc:
            plan.problems[node_id] = str(exc)
    return plan


def allocate_tasks(ipam: Ipam, snap: Snapshot, task_ids: set[str]) -> Plan | None:
    """The pass over ``task_ids`` alone (``snap.tasks`` may hold just those): a live task gets its addresses,
    one that ended or is gone gives them back (``gone``); None, changing nothing, when one of them is on a
    network other than ingress (the whole pass decides its node's networks), or while a removed network
    waits for its last tasks to end (only the whole pass, ``drop_removed``, sees that they all have)."""
    if any(net.removed for net in ipam.networks.values()):
        return None
    for tid in task_ids:
        entry = snap.tasks.get(tid)
        if entry is not None and any(not net.spec.ingress for net, _ in attached(entry[0].spec, snap)):
            return None
    plan = Plan()
    for tid in sorted(task_ids):
        entry = snap.tasks.get(tid)
        if entry is None or entry[1] >= TERMINAL:
            ipam.release_task(tid)
            plan.gone.add(tid)
            continue
        try:
            rec = task_addresses(ipam, entry[0], snap)
        except IpamError as exc:
            plan.problems[tid] = str(exc)
            continue
        if rec is not None:
            plan.addresses[tid] = rec
    return plan


__all__ = ["Plan", "Snapshot", "allocate", "allocate_tasks", "as_task", "attached", "underlay_of", "with_attachments"]
