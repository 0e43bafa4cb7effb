"""Node networking: bridges, veths and VXLAN (pyroute2), the nftables routing mesh, the DNS responder."""
