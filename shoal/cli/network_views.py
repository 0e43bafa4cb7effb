"""What ``shoal network`` and the service commands print about networks, as docker prints it. Pure.

``network ls`` has docker's columns (NETWORK ID, NAME, DRIVER, SCOPE: always ``swarm``); ``network
inspect`` prints docker's JSON shape (Name, Id, Created, Scope, Driver, IPAM.Config, Ingress,
Attachable, Labels, plus shoal's VXLAN id and the services on it); ``svc inspect`` gets docker's
``Endpoint`` (Spec, Ports, VirtualIPs).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from shoal import ids
from shoal.cli.listing import label_matches
from shoal.proto import types_pb2

NETWORK_HEADERS = ["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
PROTOCOL_NAMES = {v: k.lower() for k, v in types_pb2.PortConfig.Protocol.items()}
MODE_NAMES = {v: k.lower() for k, v in types_pb2.PortConfig.PublishMode.items()}
ENDPOINT_MODES = {"vip": types_pb2.VIP, "dnsrr": types_pb2.DNSRR}


def _time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z") if ns else ""


NETWORK_FILTERS = ("driver", "id", "label", "name", "scope", "type")
NETWORK_FILTER_CHOICES = {"scope": ("swarm", "global", "local"), "type": ("custom", "builtin")}


def network_record(net: types_pb2.Network, no_trunc: bool = False) -> dict[str, Any]:
    """A ``network ls`` row as docker's ``--format`` sees it: ``.ID`` (short unless --no-trunc, as the table
    and ``-q``), ``.Name``, ``.Driver``, ``.Scope``, ``.IPv6``, ``.Internal``, ``.Labels``, ``.CreatedAt``."""
    created = dt.datetime.fromtimestamp(net.meta.created_at_ns // 10**9, dt.UTC)
    return {
        "ID": net.id if no_trunc else ids.short(net.id),
        "Name": net.spec.name,
        "Driver": net.spec.driver or "overlay",
        "Scope": "swarm",
        "IPv6": "false",
        "Internal": "false",
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(net.spec.labels.items())),
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S") + f".{net.meta.created_at_ns % 10**9:09d}".rstrip("0").rstrip(".") + " +0000 UTC",
    }


def network_matches(net: types_pb2.Network, filters: dict[str, list[str]]) -> bool:
    """docker's ``network ls`` filters: driver exactly, id by prefix, name by part, label by key or key=value,
    scope (every network is ``swarm``) and type (``builtin``: the ingress network; ``custom``: the others)."""
    if "driver" in filters and (net.spec.driver or "overlay") not in filters["driver"]:
        return False
    if "id" in filters and not any(net.id.startswith(v) for v in filters["id"]):
        return False
    if "name" in filters and not any(v in net.spec.name for v in filters["name"]):
        return False
    if "scope" in filters and "swarm" not in [v.lower() for v in filters["scope"]]:
        return False
    if "type" in filters and ("builtin" if net.spec.ingress else "custom") not in [v.lower() for v in filters["type"]]:
        return False
    return all(label_matches(net.spec.labels, w) for w in filters.get("label", []))


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
        "EnableIPv6": False,
        "Internal": False,
        "Attachable": net.spec.attachable,
        "Ingress": net.spec.ingress,
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

