"""The cluster's address plan: node task subnets, overlay networks, task addresses, VIPs, VXLAN ids.

One ``Ipam`` holds everything the manager hands out for networking, as plain data the store keeps
(``to_dict``/``from_dict``): the subnet pool (who holds which subnet), one ``AddressSpace`` per node
(the node's bridge subnet for its tasks) and one ``Network`` per overlay network (its subnet, its VXLAN
id, and its addresses, the services' VIPs included). VIPs come from the last quarter of a network's
subnet (``Network.vip_block``) and task addresses from the rest, so a task routes that one block to
its node, where the mesh balances it, while the rest of the subnet stays on-link on the overlay. Every allocation is idempotent per owner, so a
store transaction that is retried after a conflict, or a task that is re-adopted, gets the same answer;
a refused allocation changes nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from shoal.manager.ipam.addresses import AddressSpace, IpamError
from shoal.manager.ipam.subnets import DEFAULT_POOL, DEFAULT_PREFIX, SubnetPool, ingress_prefix_for

VXLAN_FIRST = 4096  # as Swarm: lower ids are left to the machine's own devices
VXLAN_LAST = 2**24 - 1
INGRESS = "ingress"


def vip_owner(service: str) -> str:
    """The owner name a service's virtual IP is recorded under in a network's address space."""
    return f"vip:{service}"


def node_owner(node_id: str) -> str:
    """The owner name of a node's own address on an overlay network (its end of the overlay bridge)."""
    return f"node:{node_id}"


@dataclass
class Network:
    """An overlay network: its subnet (in ``addresses``), its VXLAN id and who holds which address."""

    name: str
    vxlan_id: int
    addresses: AddressSpace
    removed: bool = False  # its object is gone; the allocator frees it once no task holds an address in it
    _vip_block: tuple[ipaddress.IPv4Network, ipaddress.IPv4Network] | None = field(
        default=None, init=False, repr=False, compare=False)

    @property
    def subnet(self) -> ipaddress.IPv4Network:
        """The network's subnet."""
        return self.addresses.subnet

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The subnet's first host address (reserved: no task or node gets it)."""
        return self.addresses.gateway

    @property
    def vip_block(self) -> ipaddress.IPv4Network:
        """The last quarter of the subnet: VIPs only, so a task can route the whole block to its node."""
        subnet = self.subnet
        if self._vip_block is None or self._vip_block[0] != subnet:  # asked for every address handed out
            self._vip_block = (subnet, list(subnet.subnets(prefixlen_diff=2))[-1])
        return self._vip_block[1]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly data for the store."""
        out = {"name": self.name, "vxlan_id": self.vxlan_id, "addresses": self.addresses.to_dict()}
        if self.removed:
            out["removed"] = True
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Network:
        """The inverse of ``to_dict``."""
        return cls(
            data["name"], int(data["vxlan_id"]), AddressSpace.from_dict(data["addresses"]), bool(data.get("removed"))
        )


def _iface(space: AddressSpace, addr: ipaddress.IPv4Address) -> ipaddress.IPv4Interface:
    return ipaddress.IPv4Interface((addr, space.subnet.prefixlen))


def _text(space: AddressSpace, addr: ipaddress.IPv4Address) -> str:
    return f"{addr}/{space.subnet.prefixlen}"  # what _iface prints, without building it (allocator passes)


@dataclass
class Ipam:
    """Every subnet and address the manager has handed out; see the module docstring."""

    pool: SubnetPool = field(default_factory=SubnetPool.of)
    node_prefix: int = DEFAULT_PREFIX
    network_prefix: int = DEFAULT_PREFIX
    nodes: dict[str, AddressSpace] = field(default_factory=dict)
    networks: dict[str, Network] = field(default_factory=dict)
    ingress_prefix: int = 0  # the size of the ingress network's subnet; 0: ``ingress_prefix_for`` the pool

    def __post_init__(self) -> None:
        self.ingress_prefix = self.ingress_prefix or ingress_prefix_for(self.pool.pool)

    @classmethod
    def create(cls, pool: str = DEFAULT_POOL, node_prefix: int = DEFAULT_PREFIX,
               network_prefix: int = DEFAULT_PREFIX, ingress_prefix: int = 0) -> Ipam:
        """An empty plan over the cluster pool ``pool`` (``--default-addr-pool``)."""
        subnets = SubnetPool.of(pool)
        ingress_prefix = ingress_prefix or ingress_prefix_for(subnets.pool)
        for what, plen in (("node", node_prefix), ("network", network_prefix), ("ingress", ingress_prefix)):
            if not subnets.pool.prefixlen <= plen <= 29:
                raise IpamError(f"a /{plen} {what} subnet does not fit in the address pool {subnets.pool}")
        return cls(subnets, node_prefix, network_prefix, ingress_prefix=ingress_prefix)

    # -- nodes -----------------------------------------------------------------------------------
    def node_subnet(self, node_id: str) -> AddressSpace:
        """The task subnet of ``node_id``, allocated from the pool on first use."""
        space = self.nodes.get(node_id)
        if space is None:
            subnet = self.pool.allocate(f"node/{node_id}", self.node_prefix)
            space = self.nodes[node_id] = AddressSpace(subnet)
        return space

    def release_node(self, node_id: str) -> None:
        """Give back a node's subnet and its addresses on the networks (the node left)."""
        self.nodes.pop(node_id, None)
        self.pool.release(f"node/{node_id}")
        for network in self.networks.values():
            network.addresses.release(node_owner(node_id))

    def task_address(self, node_id: str, task_id: str) -> ipaddress.IPv4Interface:
        """The address (with prefix) of a task on its node's bridge."""
        space = self.node_subnet(node_id)
        return _iface(space, space.allocate(task_id))

    def task_address_text(self, node_id: str, task_id: str) -> str:
        """``task_address`` as ``addr/prefix`` text (what records hold; cheaper by far at 10,000 tasks)."""
        space = self.node_subnet(node_id)
        return _text(space, space.allocate(task_id))

    # -- networks --------------------------------------------------------------------------------
    def _free_vxlan_id(self) -> int:
        used = {n.vxlan_id for n in self.networks.values()}
        vid = VXLAN_FIRST
        while vid in used:
            vid += 1
        if vid > VXLAN_LAST:
            raise IpamError("no free VXLAN id left")
        return vid

    def create_network(self, name: str, subnet: str | None = None) -> Network:
        """A new overlay network with its own subnet (``subnet``, or the pool's next) and VXLAN id.

        The pool's next is a ``network_prefix`` block, an ``ingress_prefix`` one for the ingress network.
        """
        if not name:
            raise IpamError("a network needs a name")
        if name in self.networks:
            raise IpamError(f"network {name!r} already exists")
        vxlan_id = self._free_vxlan_id()
        owner = f"network/{name}"
        plen = self.ingress_prefix if name == INGRESS else self.network_prefix
        net = self.pool.claim(owner, subnet) if subnet else self.pool.allocate(owner, plen)
        network = self.networks[name] = Network(name, vxlan_id, AddressSpace(net))
        return network

    def network(self, name: str) -> Network:
        """The network called ``name``; one clear error when there is none."""
        try:
            return self.networks[name]
        except KeyError:
            raise IpamError(f"network {name!r} not found") from None

    def remove_network(self, name: str) -> None:
        """Forget a network and free its subnet and VXLAN id; refused while an address in it is held."""
        network = self.network(name)
        if network.addresses.owners:
            held = sorted(network.addresses.owners.values())
            more = f" and {len(held) - 3} more" if len(held) > 3 else ""
            raise IpamError(f"network {name!r} still has addresses in use ({', '.join(held[:3])}{more})")
        del self.networks[name]
        self.pool.release(f"network/{name}")

    def network_address(self, network: str, owner: str) -> ipaddress.IPv4Interface:
        """The address (with prefix) of ``owner`` (a task id) on ``network``."""
        net = self.network(network)
        return _iface(net.addresses, net.addresses.allocate(owner, avoid=net.vip_block))

    def network_address_text(self, network: str, owner: str) -> str:
        """``network_address`` as ``addr/prefix`` text."""
        net = self.network(network)
        return _text(net.addresses, net.addresses.allocate(owner, avoid=net.vip_block))

    def node_address(self, network: str, node_id: str) -> ipaddress.IPv4Interface:
        """The node's own address on ``network``: where the node's mesh sends and receives overlay traffic."""
        return self.network_address(network, node_owner(node_id))

    def vip(self, service: str, network: str) -> ipaddress.IPv4Address:
        """The virtual IP of ``service`` on ``network`` (allocated on first use)."""
        net = self.network(network)
        return net.addresses.allocate(vip_owner(service), within=net.vip_block)

    def release_vip(self, service: str, network: str) -> None:
        """Free the VIP of ``service`` on one network (``svc update --network-rm``)."""
        self.network(network).addresses.release(vip_owner(service))

    def release_vips(self, service: str) -> None:
        """Free every VIP of ``service`` (the service was removed)."""
        for network in self.networks.values():
            network.addresses.release(vip_owner(service))

    def release_task(self, task_id: str) -> None:
        """Free every address ``task_id`` holds, on its node and on every network."""
        for space in [*self.nodes.values(), *(n.addresses for n in self.networks.values())]:
            space.release(task_id)

    # -- storage ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly data for the store."""
        return {
            "pool": self.pool.to_dict(),
            "node_prefix": self.node_prefix,
            "network_prefix": self.network_prefix,
            "ingress_prefix": self.ingress_prefix,
            "nodes": {n: s.to_dict() for n, s in sorted(self.nodes.items())},
            "networks": {n: net.to_dict() for n, net in sorted(self.networks.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ipam:
        """The inverse of ``to_dict``; refuses data whose subnets disagree with the pool."""
        ipam = cls(SubnetPool.from_dict(data["pool"]), int(data["node_prefix"]), int(data["network_prefix"]),
                   ingress_prefix=int(data.get("ingress_prefix", 0)))
        ipam.nodes = {n: AddressSpace.from_dict(s) for n, s in data.get("nodes", {}).items()}
        ipam.networks = {n: Network.from_dict(d) for n, d in data.get("networks", {}).items()}
        ipam.check()
        return ipam

    def check(self) -> None:
        """Refuse a plan whose node or network subnets disagree with the pool (corrupt stored data)."""
        for key, subnet in [*((f"node/{n}", s.subnet) for n, s in self.nodes.items()),
                            *((f"network/{n}", net.subnet) for n, net in self.networks.items())]:
            if self.pool.lookup(key) != subnet:
                raise IpamError(f"stored address plan is inconsistent: {key} has {subnet} but the pool says "
                                f"{self.pool.lookup(key)}")
