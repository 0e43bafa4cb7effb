"""The leader's network allocator: node subnets, service VIPs and ports, task addresses (see ``decide``)."""
