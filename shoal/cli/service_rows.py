"""``svc ls``'s rows from plain data: the one implementation both of its paths print with.

The click command (service.py, over grpcio) turns its protobuf reply into ServiceViews
(service_views.service_view); the fast path (fastsvc.py) reads the same views straight from the reply's
bytes (svclswire.py) without loading google.protobuf. Everything after that -- filters, docker's
REPLICAS and PORTS columns, the order, the row -- is here, once. The enum names are tables taken from
proto/types.proto (a unit test checks them against the generated descriptors).
"""

from __future__ import annotations

from shoal import ids
from shoal.cli.listing import label_matches, mode_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

SERVICE_HEADERS = ("ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS")
REPLICATED, GLOBAL, REPLICATED_JOB, GLOBAL_JOB = 0, 1, 2, 3  # ServiceSpec.Mode
PROTOCOL_NAMES = ("tcp", "udp", "sctp")  # PortConfig.Protocol, by number
INGRESS, HOST = 0, 1  # PortConfig.PublishMode

Port = tuple[int, int, int, int]  # (protocol, target_port, published_port, publish_mode)
Summary = tuple[int, int, int]  # ServiceSummary's (running, desired, completed)


class ServiceView:
    """What ``svc ls`` reads of one Service: its fields with protobuf's defaults (``replicas`` None
    when the optional field is unset; ``ports`` the spec's, ``endpoint_ports`` the allocated ones)."""

    __slots__ = ("id", "name", "labels", "mode", "image", "max_per_node", "replicas", "ports", "endpoint_ports")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.labels: dict[str, str] = {}
        self.mode = REPLICATED
        self.image = ""
        self.max_per_node = 0
        self.replicas: int | None = None
        self.ports: list[Port] = []
        self.endpoint_ports: list[Port] = []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceView) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self) -> str:
        return "ServiceView(" + ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__) + ")"


def replicas_text(view: ServiceView, summary: Summary | None) -> str:
    """docker's REPLICAS column: "2/3", "2/3 (max 1 per node)", jobs "0/1 (3/3 completed)"."""
    running, desired, completed = summary or (0, 0, 0)
    text = f"{running}/{desired}"
    if view.mode == REPLICATED and view.max_per_node:
        return text + f" (max {view.max_per_node} per node)"
    if view.mode == REPLICATED_JOB:
        total = 1 if view.replicas is None else view.replicas
        return text + f" ({completed}/{total} completed)"
    if view.mode == GLOBAL_JOB:
        return text + f" ({completed} completed)"
    return text


def port_text(port: Port) -> str:
    """How ``svc ls`` shows a port: ``*:8080->80/tcp`` (ingress) or ``8080->80/tcp`` (host mode)."""
    protocol, target, published, mode = port
    if not 0 <= protocol < len(PROTOCOL_NAMES):  # as protobuf's Protocol.Name refuses a number it does not know
        raise ValueError(f"unknown port protocol {protocol}")
    prefix = "*:" if mode == INGRESS else ""
    return f"{prefix}{published or ''}->{target}/{PROTOCOL_NAMES[protocol]}"


def ports_text(ports: Iterable[Port]) -> str:
    """docker's PORTS column: the ingress ports, ``*:8080->80/tcp, *:53->53/udp``."""
    return ", ".join(port_text(p) for p in ports if p[3] == INGRESS)


def record(view: ServiceView, summary: Summary | None) -> dict[str, str]:
    """One ``svc ls`` row as a JSON object (full id)."""
    return {
        "ID": view.id,
        "Name": view.name,
        "Mode": mode_name(view.mode),
        "Replicas": replicas_text(view, summary),
        "Image": view.image,
        "Ports": ports_text(view.endpoint_ports or view.ports),  # as allocated (a port left at 0 picked)
    }


def matches(f: Mapping[str, Sequence[str]], view: ServiceView) -> bool:
    """Whether a service passes the ``svc ls`` filters ``f`` (name and id prefixes, mode, labels)."""
    if "name" in f and not any(view.name.startswith(n) for n in f["name"]):
        return False
    if "id" in f and not any(view.id.startswith(i) for i in f["id"]):
        return False
    mode = mode_name(view.mode).replace(" ", "-")
    if "mode" in f and mode not in [m.lower().replace(" ", "-") for m in f["mode"]]:
        return False
    return "label" not in f or all(label_matches(view.labels, w) for w in f["label"])


def records(views: Iterable[ServiceView], summaries: Mapping[str, Summary], f: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """``svc ls``'s rows: the services passing the filters ``f``, by name."""
    return [record(v, summaries.get(v.id)) for v in sorted(views, key=lambda v: v.name) if matches(f, v)]


def service_row(rec: Mapping[str, str]) -> list[str]:
    return [ids.short(rec["ID"]), rec["Name"], rec["Mode"], rec["Replicas"], rec["Image"], rec["Ports"]]


def service_template_record(rec: Mapping[str, str]) -> dict[str, str]:
    """What ``svc ls --format`` sees: the row's fields, ``.ID`` cut short as docker's is."""
    return {**rec, "ID": ids.short(rec["ID"])}
