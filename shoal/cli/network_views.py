"""What ``shoal network`` and the service commands print about networks, as docker prints it. Pure.

``network ls`` has docker's columns (NETWORK ID, NAME, DRIVER, SCOPE: always ``swarm``); ``network
inspect`` prints docker's JSON shape (Name, Id, Created, Scope, Driver, IPAM.Config, Ingress,
Attachable, Labels, plus shoal's VXLAN id and the services on it); ``svc inspect`` gets docker's
``Endpoint`` (Spec, Ports, VirtualIPs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from shoal import ids
from shoal.proto import types_pb2

NETWORK_HEADERS = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
PROTOCOL_NAMES = {v: k.lower() for k, v in types_pb2.PortConfig.Protocol.items()}
MODE_NAMES = {v: k.lower() for k, v in types_pb2.PortConfig.PublishMode.items()}
ENDPOINT_MODES = {"vip": types_pb2.VIP, "dnsrr": types_pb2.DNSRR}


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z") if ns else ""


def network_row(net: types_pb2.Network, no_trunc: bool = False) -> list[str]:
    return [net.id if no_trunc else ids.short(net.id), net.spec.name, net.spec.driver or "overlay", "swarm"]


def network_rows(nets: Iterable[types_pb2.Network], no_trunc: bool = False) -> list[Sequence[str]]:
    return [network_row(n, no_trunc) for n in nets]


def network_dict(net: types_pb2.Network, services: Iterable[str] = (),
                 containers: Iterable[types_pb2.ContainerAttachment] = ()) -> dict[str, Any]:
    """``network inspect``'s JSON for one network (``Containers``: the standalone ones, as docker shows them)."""
    return {
        "Name": net.spec.name,
        "Id": net.id,
        "Created": _time(net.meta.created_at_ns),
        "Scope": "swarm",
        "Driver": net.spec.driver or "overlay",
        "IPAM": {"Driver": "default", "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
        "Ingress": net.spec.ingress,
        "Attachable": net.spec.attachable,
        "Labels": dict(sorted(net.spec.labels.items())),
        "Options": {"com.docker.network.driver.overlay.vxlanid_list": str(net.vxlan_id)},
        "VIPBlock": net.vip_block,
        "Services": list(services),
        "Containers": {c.container_id: {"Name": c.container_name, "EndpointID": c.id, "IPv4Address": c.address,
                                        "Node": c.node_id} for c in containers},
    }


def port_dict(p: types_pb2.PortConfig) -> dict[str, Any]:
    out: dict[str, Any] = {"Protocol": PROTOCOL_NAMES[p.protocol], "TargetPort": p.target_port}
    if p.published_port:
        out["PublishedPort"] = p.published_port
    out["PublishMode"] = MODE_NAMES[p.publish_mode]
    if p.name:
        out = {"Name": p.name, **out}
    return out


def endpoint_mode_name(mode: int) -> str:
    return "dnsrr" if mode == types_pb2.DNSRR else "vip"


def endpoint_dict(svc: types_pb2.Service) -> dict[str, Any]:
    """docker's ``Endpoint`` of a service: its spec, the ports as published, and its VIPs."""
    out: dict[str, Any] = {"Spec": {"Mode": endpoint_mode_name(svc.spec.endpoint_mode)}}
    if svc.spec.ports:
        out["Spec"]["Ports"] = [port_dict(p) for p in svc.spec.ports]
    if svc.endpoint.ports:
        out["Ports"] = [port_dict(p) for p in svc.endpoint.ports]
    if svc.endpoint.virtual_ips:
        out["VirtualIPs"] = [{"NetworkID": v.network_id, "Addr": v.addr} for v in svc.endpoint.virtual_ips]
    return out


def endpoint_lines(svc: types_pb2.Service) -> list[str]:
    """``svc inspect --pretty``'s endpoint part."""
    lines = [f"Endpoint Mode:  {endpoint_mode_name(svc.spec.endpoint_mode)}"]
    for v in svc.endpoint.virtual_ips:
        lines.append(f" VirtualIP:     {v.addr} ({v.network})")
    return lines

