"""Published ports: which service holds which, and the ports picked for ``published_port = 0``.

An ingress-mode port is published on every node, so two services may not publish the same
protocol/port; the control API refuses a clash at create or update (naming the holder), and the
allocator picks ports for ``published_port = 0`` from ``30000-32767`` (Swarm's range), keeping the one a
service already got. Host-mode ports are the scheduler's business (it refuses two on one node). Pure.
"""

from __future__ import annotations

from collections.abc import Iterable

from shoal.proto import types_pb2 as pb

AUTO_FIRST, AUTO_LAST = 30000, 32767
PROTOCOLS = {pb.PortConfig.TCP: "tcp", pb.PortConfig.UDP: "udp", pb.PortConfig.SCTP: "sctp"}


def describe(port: pb.PortConfig) -> str:
    """``8080/tcp`` as a person reads it."""
    return f"{port.published_port}/{PROTOCOLS.get(port.protocol, 'tcp')}"


def ingress_ports(spec: pb.ServiceSpec) -> list[pb.PortConfig]:
    """The ports the routing mesh publishes on every node."""
    return [p for p in spec.ports if p.publish_mode == pb.PortConfig.INGRESS]


def holders(
    services: Iterable[pb.Service], endpoints: dict[str, pb.ServiceEndpoint] | None = None
) -> dict[tuple[int, int], str]:
    """(protocol, published port) -> the name of the service holding it (explicit or picked)."""
    held: dict[tuple[int, int], str] = {}
    for svc in services:
        for p in ingress_ports(svc.spec):
            if p.published_port:
                held[(p.protocol, p.published_port)] = svc.spec.name
        rec = (endpoints or {}).get(svc.id)
        for p in rec.endpoint.ports if rec is not None else ():
            if p.publish_mode == pb.PortConfig.INGRESS and p.published_port:
                held.setdefault((p.protocol, p.published_port), svc.spec.name)
    return held


def clash(
    spec: pb.ServiceSpec, others: Iterable[pb.Service], endpoints: dict[str, pb.ServiceEndpoint] | None = None
) -> str | None:
    """The error for a spec publishing a port another service holds (None when all are free)."""
    held = holders(others, endpoints)
    seen: set[tuple[int, int]] = set()
    for p in ingress_ports(spec):
        if not p.published_port:
            continue
        key = (p.protocol, p.published_port)
        if key in seen:
            return f"port {describe(p)} is published twice by service {spec.name}"
        seen.add(key)
        if key in held:
            return f"port {describe(p)} is already published by service {held[key]}"
    return None


def _previous(port: pb.PortConfig, before: pb.Endpoint | None) -> int:
    for p in before.ports if before is not None else ():
        if (p.target_port, p.protocol, p.name, p.publish_mode) == (
            port.target_port,
            port.protocol,
            port.name,
            port.publish_mode,
        ):
            return p.published_port
    return 0


def assign(
    services: list[pb.Service], recorded: dict[str, pb.ServiceEndpoint]
) -> dict[str, list[pb.PortConfig]]:
    """Every service's ports with ``published_port`` filled in (ingress mode; host mode stays as asked).

    A service keeps a port it was given before while nobody asked for it explicitly; new ones are the
    lowest free in the range. Services are handled in id order, so the answer does not depend on the
    order they come in.
    """
    services = sorted(services, key=lambda s: s.id)
    taken = {
        (p.protocol, p.published_port) for s in services for p in ingress_ports(s.spec) if p.published_port
    }
    out: dict[str, list[pb.PortConfig]] = {}
    pending: list[pb.PortConfig] = []
    for svc in services:
        before = recorded[svc.id].endpoint if svc.id in recorded else None
        ports = out[svc.id] = []
        for spec_port in svc.spec.ports:
            p = pb.PortConfig()
            p.CopyFrom(spec_port)
            ports.append(p)
            if p.published_port or p.publish_mode != pb.PortConfig.INGRESS:
                continue
            prev = _previous(p, before)
            if prev and (p.protocol, prev) not in taken:
                p.published_port = prev
                taken.add((p.protocol, prev))
            else:
                pending.append(p)
    for p in pending:
        port = next((n for n in range(AUTO_FIRST, AUTO_LAST + 1) if (p.protocol, n) not in taken), 0)
        p.published_port = port  # 0: the range is full (the service publishes nothing on that port)
        taken.add((p.protocol, port))
    return out
