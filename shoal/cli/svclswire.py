"""ListServices' reply read into ServiceViews by hand: what the fast ``svc ls`` prints, without protobuf.

The decoder reads only the fields ``svc ls`` shows or filters on (FIELDS) and skips every other one as
protobuf's parser skips an unknown field, so a field added to the .proto changes nothing here; a field
renumbered there fails tests/unit/test_cli_svclswire.py (FIELDS against the generated descriptors)
instead of printing wrong columns. It follows protobuf's parsing rules for the fields it reads: the
last value of a scalar wins, a message field seen twice is merged, repeated fields and map entries add
up (a map key seen again replaces its value), a field whose wire type does not match is unknown, and
ints keep their declared width. The same test proves, over many generated messages, that the views
equal those the generated classes give (service_views.service_view).
"""

from __future__ import annotations

from shoal.cli import protowire as w
from shoal.cli.listing import MODE_NAMES
from shoal.cli.protowire import LEN, VARINT
from shoal.cli.service_rows import HOST, PROTOCOL_NAMES, Port, ServiceView, Summary

# (message.field) -> field number, as in proto/control.proto and proto/types.proto
FIELDS = {
    "ListServicesResponse.services": 1,
    "ListServicesResponse.summaries": 2,
    "ServiceSummary.running": 1,
    "ServiceSummary.desired": 2,
    "ServiceSummary.completed": 3,
    "Service.id": 1,
    "Service.spec": 3,
    "Service.endpoint": 6,
    "ServiceSpec.name": 1,
    "ServiceSpec.labels": 2,
    "ServiceSpec.container": 3,
    "ServiceSpec.placement": 5,
    "ServiceSpec.mode": 9,
    "ServiceSpec.replicas": 10,
    "ServiceSpec.ports": 12,
    "ContainerSpec.image": 1,
    "Placement.max_replicas_per_node": 3,
    "Endpoint.ports": 2,
    "PortConfig.protocol": 2,
    "PortConfig.target_port": 3,
    "PortConfig.published_port": 4,
    "PortConfig.publish_mode": 5,
}
_F = FIELDS
RESP_SERVICES, RESP_SUMMARIES = _F["ListServicesResponse.services"], _F["ListServicesResponse.summaries"]
SUM_FIELDS = (_F["ServiceSummary.running"], _F["ServiceSummary.desired"], _F["ServiceSummary.completed"])
SVC_ID, SVC_SPEC, SVC_ENDPOINT = _F["Service.id"], _F["Service.spec"], _F["Service.endpoint"]
SPEC_NAME, SPEC_LABELS, SPEC_CONTAINER = _F["ServiceSpec.name"], _F["ServiceSpec.labels"], _F["ServiceSpec.container"]
SPEC_PLACEMENT, SPEC_MODE, SPEC_REPLICAS = _F["ServiceSpec.placement"], _F["ServiceSpec.mode"], _F["ServiceSpec.replicas"]
SPEC_PORTS, IMAGE, MAX_PER_NODE = _F["ServiceSpec.ports"], _F["ContainerSpec.image"], _F["Placement.max_replicas_per_node"]
ENDPOINT_PORTS = _F["Endpoint.ports"]
PORT_FIELDS = (_F["PortConfig.protocol"], _F["PortConfig.target_port"], _F["PortConfig.published_port"], _F["PortConfig.publish_mode"])
KEY, VALUE = 1, 2  # a map entry's fields (protobuf's encoding of maps)

WireError = w.WireError


def list_services(raw: bytes) -> tuple[list[ServiceView], dict[str, Summary]] | None:
    """The services of a serialized ListServicesResponse and their summaries by service id; None when an
    enum holds a number the tables do not name (a newer manager: the generated classes decide what to
    show). WireError when ``raw`` is not a message."""
    views: list[ServiceView] = []
    summaries: dict[str, Summary] = {}
    for num, wire, a, b in w.fields(raw):
        if wire != LEN:
            continue
        if num == RESP_SERVICES:
            view = ServiceView()
            _service(raw, a, b, view)
            views.append(view)
        elif num == RESP_SUMMARIES:
            key, summary = _summary_entry(raw, a, b)
            summaries[key] = summary
    if not all(_known(v) for v in views):
        return None
    return views, summaries


def _known(view: ServiceView) -> bool:
    ports = view.ports + view.endpoint_ports
    return 0 <= view.mode < len(MODE_NAMES) and all(0 <= p[0] < len(PROTOCOL_NAMES) and 0 <= p[3] <= HOST for p in ports)


def _service(buf: bytes, a: int, b: int, view: ServiceView) -> None:
    for num, wire, x, y in w.fields(buf, a, b):
        if wire != LEN:
            continue
        if num == SVC_ID:
            view.id = w.text(buf, x, y)
        elif num == SVC_SPEC:
            _spec(buf, x, y, view)
        elif num == SVC_ENDPOINT:
            for num2, wire2, x2, y2 in w.fields(buf, x, y):
                if num2 == ENDPOINT_PORTS and wire2 == LEN:
                    view.endpoint_ports.append(_port(buf, x2, y2))


def _spec(buf: bytes, a: int, b: int, view: ServiceView) -> None:
    for num, wire, x, y in w.fields(buf, a, b):
        if wire == VARINT:
            if num == SPEC_MODE:
                view.mode = w.int32(x)
            elif num == SPEC_REPLICAS:
                view.replicas = w.int64(x)
        elif wire != LEN:
            continue
        elif num == SPEC_NAME:
            view.name = w.text(buf, x, y)
        elif num == SPEC_LABELS:
            key, value = _string_entry(buf, x, y)
            view.labels[key] = value
        elif num == SPEC_CONTAINER:
            view.image = _last_string(buf, x, y, IMAGE, view.image)
        elif num == SPEC_PLACEMENT:
            for num2, wire2, x2, _ in w.fields(buf, x, y):
                if num2 == MAX_PER_NODE and wire2 == VARINT:
                    view.max_per_node = x2
        elif num == SPEC_PORTS:
            view.ports.append(_port(buf, x, y))


def _last_string(buf: bytes, a: int, b: int, number: int, value: str) -> str:
    """The last value of string field ``number`` in a message (``value`` if it has none)."""
    for num, wire, x, y in w.fields(buf, a, b):
        if num == number and wire == LEN:
            value = w.text(buf, x, y)
    return value


def _string_entry(buf: bytes, a: int, b: int) -> tuple[str, str]:
    key = _last_string(buf, a, b, KEY, "")
    return key, _last_string(buf, a, b, VALUE, "")


def _port(buf: bytes, a: int, b: int) -> Port:
    values = [0, 0, 0, 0]
    for num, wire, x, _ in w.fields(buf, a, b):
        if wire == VARINT and num in PORT_FIELDS:
            i = PORT_FIELDS.index(num)
            values[i] = w.int32(x) if i in (0, 3) else x & w.MASK32  # enums, then uint32 ports
    return values[0], values[1], values[2], values[3]


def _summary_entry(buf: bytes, a: int, b: int) -> tuple[str, Summary]:
    key, counts = "", [0, 0, 0]
    for num, wire, x, y in w.fields(buf, a, b):
        if num == KEY and wire == LEN:
            key = w.text(buf, x, y)
        elif num == VALUE and wire == LEN:  # a value seen twice in one entry is merged, as any message field
            for num2, wire2, x2, _ in w.fields(buf, x, y):
                if wire2 == VARINT and num2 in SUM_FIELDS:
                    counts[SUM_FIELDS.index(num2)] = x2
    return key, (counts[0], counts[1], counts[2])
