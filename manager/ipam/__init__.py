"""IP address management: the subnets, addresses, VIPs and VXLAN ids the manager hands out (pure data),
and the plan kept in the store (``IpamStore``)."""

from shoal.manager.ipam.addresses import AddressSpace, IpamError, parse_network
from shoal.manager.ipam.allocator import INGRESS, VXLAN_FIRST, Ipam, Network, node_owner, vip_owner
from shoal.manager.ipam.stored import IpamStore
from shoal.manager.ipam.subnets import DEFAULT_POOL, DEFAULT_PREFIX, SubnetPool

__all__ = [
    "DEFAULT_POOL", "DEFAULT_PREFIX", "INGRESS", "VXLAN_FIRST",
    "AddressSpace", "IpamError", "Ipam", "IpamStore", "Network", "SubnetPool", "node_owner", "parse_network", "vip_owner",
]
