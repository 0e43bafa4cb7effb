"""The fast ``svc ls`` decoder (shoal/cli/svclswire.py, protowire.py) against protobuf's own parser.

Messages are built with the generated classes and serialized -- as the manager sends them, and with
what a newer manager or another serializer may send: fields in any order, unknown fields of every wire
type (groups included), known numbers with the wrong wire type, a message field split in two, two
services merged into one, map keys repeated, a reply cut short. The oracle is always the generated
classes parsing the same bytes: the decoder's views and ``svc ls`` rows must equal theirs, and it
must fail exactly when they do.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import descriptor
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoal.cli import listing, protowire, service_rows, svclswire
from shoal.cli.service_views import service_records, service_view
from shoal.proto import control_pb2 as cpb
from shoal.proto import types_pb2 as pb

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
U32, U64 = st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)
I64 = st.integers(-(2**63), 2**63 - 1)
ANY_ENUM = st.one_of(st.integers(0, 3), st.integers(-(2**31), 2**31 - 1))  # mostly known values
FD = descriptor.FieldDescriptor


def enums(enum: st.SearchStrategy[int] | None, values: int) -> st.SearchStrategy[int]:
    """``enum`` if given, else the values the .proto names (0 .. values-1)."""
    return enum if enum is not None else st.integers(0, values - 1)


def ports(enum: st.SearchStrategy[int] | None) -> st.SearchStrategy[list[pb.PortConfig]]:
    port = st.builds(pb.PortConfig, name=TEXT, protocol=enums(enum, 3), target_port=U32, published_port=U32,
                     publish_mode=enums(enum, 2))
    return st.lists(port, max_size=3)


@st.composite
def services(draw: st.DrawFn, enum: st.SearchStrategy[int] | None = None) -> pb.Service:
    """A Service with every field ``svc ls`` reads and some it skips (previous_spec has the same numbers)."""
    spec = pb.ServiceSpec(name=draw(TEXT), labels=draw(st.dictionaries(st.text("ab", max_size=2), TEXT, max_size=3)))
    spec.container.image = draw(TEXT)
    spec.container.env.extend(draw(st.lists(TEXT, max_size=2)))
    spec.placement.max_replicas_per_node = draw(U64)
    spec.update_config.max_failure_ratio = draw(st.floats(allow_nan=False))  # a double: wire type I64 skipped
    if draw(st.booleans()):
        spec.replicas = draw(I64)
    spec.mode = draw(enums(enum, 4))
    spec.ports.extend(draw(ports(enum)))
    svc = pb.Service(id=draw(TEXT), spec=spec, spec_version=draw(U64))
    svc.endpoint.ports.extend(draw(ports(enum)))
    if draw(st.booleans()):
        svc.previous_spec.CopyFrom(pb.ServiceSpec(name=draw(TEXT), mode=draw(st.integers(0, 3)), replicas=draw(I64)))
    svc.meta.created_at_ns = draw(I64)
    return svc


@st.composite
def responses(draw: st.DrawFn, enum: st.SearchStrategy[int] | None = None) -> cpb.ListServicesResponse:
    svcs = draw(st.lists(services(enum), max_size=4))
    keys = st.one_of(TEXT, st.sampled_from([s.id for s in svcs] or [""]))
    summary = st.builds(cpb.ServiceSummary, running=U64, desired=U64, completed=U64)
    return cpb.ListServicesResponse(services=svcs, summaries=draw(st.dictionaries(keys, summary, max_size=4)))


@st.composite
def filters(draw: st.DrawFn) -> dict[str, list[str]]:
    keys = draw(st.sets(st.sampled_from(["name", "id", "mode", "label"]), max_size=2))
    values = {"mode": st.sampled_from(listing.SERVICE_FILTER_VALUES["mode"]), "label": st.sampled_from(["", "a", "a=b", "=x"])}
    return {k: draw(st.lists(values.get(k, st.text("abc", max_size=2)), min_size=1, max_size=2)) for k in keys}


def known(resp: cpb.ListServicesResponse) -> bool:
    """Whether every enum value in ``resp`` that svc ls reads has a name in the .proto."""
    ports = [p for s in resp.services for p in (*s.spec.ports, *s.endpoint.ports)]
    return all(s.spec.mode in pb.ServiceSpec.Mode.values() for s in resp.services) and all(
        p.protocol in pb.PortConfig.Protocol.values() and p.publish_mode in pb.PortConfig.PublishMode.values() for p in ports
    )


def assert_same(raw: bytes, f: dict[str, list[str]] | None = None) -> None:
    """The decoder reads ``raw`` as the generated classes do (views, summaries, rows), or fails as they do."""
    try:
        resp = cpb.ListServicesResponse.FromString(raw)
    except DecodeError:
        with pytest.raises(protowire.WireError):
            svclswire.list_services(raw)
        return
    got = svclswire.list_services(raw)
    if not known(resp):
        assert got is None
        return
    assert got is not None
    views, summaries = got
    assert views == [service_view(s) for s in resp.services]
    assert summaries == {k: (v.running, v.desired, v.completed) for k, v in resp.summaries.items()}
    assert service_rows.records(views, summaries, f or {}) == service_records(resp, f or {})


@settings(max_examples=200, deadline=None)
@given(responses(), filters())
def test_the_rows_of_serialized_replies_are_protobufs_rows(resp: cpb.ListServicesResponse, f: dict[str, list[str]]) -> None:
    raw = resp.SerializeToString()
    assert_same(raw, f)
    got = svclswire.list_services(raw)
    assert got is not None and len(got[0]) == len(resp.services)


@settings(max_examples=60, deadline=None)
@given(responses(enum=ANY_ENUM))
def test_an_enum_value_the_proto_does_not_name_is_left_to_the_generated_classes(resp: cpb.ListServicesResponse) -> None:
    assert_same(resp.SerializeToString())


# --- wire variations: the generated classes parse the same bytes, and decide -------------------------------

def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append(n & 0x7F | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return varint(number << 3 | wire) + (varint(len(payload)) if wire == protowire.LEN else b"") + payload


WIRE_OF = {FD.TYPE_DOUBLE: protowire.I64, FD.TYPE_FIXED64: protowire.I64, FD.TYPE_FLOAT: protowire.I32,
           FD.TYPE_FIXED32: protowire.I32, FD.TYPE_STRING: protowire.LEN, FD.TYPE_BYTES: protowire.LEN,
           FD.TYPE_MESSAGE: protowire.LEN}


def noise(draw: st.DrawFn, msg_desc: Any, depth: int = 0) -> bytes:
    """One more field: an unknown number, or a known one (not a packable repeated scalar) with a wire
    type other than its own -- any wire type, groups nesting more noise -- which the parser skips; or a
    varint field of ``msg_desc`` with a value of any width (a decoy: the last value wins, ints are cut
    to their declared width; enums stay named)."""
    varints = [f for f in msg_desc.fields if f.type not in WIRE_OF]
    kind = draw(st.sampled_from(("unknown", "wrong", "decoy") if varints else ("unknown", "wrong")))
    if kind == "decoy":
        fd = draw(st.sampled_from(varints))
        return field(fd.number, protowire.VARINT, varint(draw(st.integers(0, 1) if fd.type == FD.TYPE_ENUM else U64)))
    wrong = [f for f in msg_desc.fields if not (f.is_repeated and f.type not in WIRE_OF)]
    if wrong and kind == "wrong":
        fd = draw(st.sampled_from(wrong))
        number = fd.number
        wire = draw(st.sampled_from([w for w in (0, 1, 2, 3, 5) if w != WIRE_OF.get(fd.type, protowire.VARINT)]))
    else:
        number = draw(st.integers(100, 2**29 - 1))
        wire = draw(st.sampled_from((0, 1, 2, 3, 5)))
    if wire == protowire.SGROUP:
        inner = b"".join(noise(draw, msg_desc, depth + 1) for _ in range(draw(st.integers(0, 2 if depth < 2 else 0))))
        return varint(number << 3 | 3) + inner + varint(number << 3 | 4)
    payload = {0: varint(draw(U64)), 1: draw(st.binary(min_size=8, max_size=8)), 5: draw(st.binary(min_size=4, max_size=4))}
    return field(number, wire, payload[wire] if wire != protowire.LEN else draw(st.binary(max_size=6)))


def parts(draw: st.DrawFn, msg: Any) -> list[bytes]:
    """``msg``'s fields in wire form, one part per field occurrence, mixed with noise, in any order; a
    singular message field is sometimes split in two occurrences (which the parser merges back)."""
    out = []
    for fd, value in msg.ListFields():
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            for k in value:
                holder = type(msg)()
                holder_map = getattr(holder, fd.name)
                if fd.message_type.fields_by_name["value"].message_type is None:
                    holder_map[k] = value[k]
                else:
                    holder_map[k].CopyFrom(value[k])
                out.append(holder.SerializeToString())  # one entry, as the map's own serializer writes it
        elif fd.message_type is not None:
            for v in (value if fd.is_repeated else [value]):
                sub = parts(draw, v)
                cut = draw(st.integers(0, len(sub))) if not fd.is_repeated else len(sub)
                out.append(field(fd.number, protowire.LEN, b"".join(sub[:cut])))
                if cut < len(sub):
                    out.append(field(fd.number, protowire.LEN, b"".join(sub[cut:])))
        else:
            single = type(msg)()
            if fd.is_repeated:
                getattr(single, fd.name).extend(value)
            else:
                setattr(single, fd.name, value)
            out.append(single.SerializeToString())
    out += [noise(draw, msg.DESCRIPTOR) for _ in range(draw(st.integers(0, 2)))]
    return draw(st.permutations(out))


@st.composite
def variant_bytes(draw: st.DrawFn) -> bytes:
    """A reply as another serializer (or a newer manager) may write it; sometimes two services in one
    ``services`` occurrence (the parser merges the second into the first: last scalar wins, lists add up),
    summaries for a key already given."""
    resp = draw(responses())
    top = parts(draw, cpb.ListServicesResponse(summaries=resp.summaries))
    again = st.sampled_from([*resp.summaries, *(s.id for s in resp.services), ""])  # a key seen again replaces
    summary = st.builds(cpb.ServiceSummary, running=U64, desired=U64, completed=U64)
    top += parts(draw, cpb.ListServicesResponse(summaries=draw(st.dictionaries(again, summary, max_size=2))))
    svcs = list(resp.services)
    while svcs:
        group = [svcs.pop(0)]
        if svcs and draw(st.booleans()):
            group.append(svcs.pop(0))
        top.append(field(1, protowire.LEN, b"".join(b"".join(parts(draw, s)) for s in group)))
    return b"".join(draw(st.permutations(top)))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(variant_bytes(), filters())
def test_other_wire_forms_read_as_the_generated_classes_read_them(raw: bytes, f: dict[str, list[str]]) -> None:
    assert_same(raw, f)


@settings(max_examples=100, deadline=None)
@given(responses(), st.data())
def test_a_reply_cut_short_fails_or_reads_as_protobuf_reads_it(resp: cpb.ListServicesResponse, data: st.DataObject) -> None:
    raw = resp.SerializeToString()
    assert_same(raw[: data.draw(st.integers(0, len(raw)))])


@pytest.mark.parametrize("raw", [
    b"\x00\x01", b"\x0f", b"\x0e", b"\x0c", b"\x0b\x14", b"\x0b", b"\x08" + b"\xff" * 10 + b"\x01", b"\x19\x01\x02",
    b"\x0a\x05ab", b"\x80\x80\x80\x80\x10\x00", b"\x0a\x03\x0a\x01\xff",
    b"\x18" + b"\xff" * 9 + b"\x7f", b"\x0a\x06\x1a\x04\x0b\x0c\x0a\x00", b"\x0b\x0c",
], ids=["field-0", "wire-7", "wire-6", "end-group", "unbalanced-group", "open-group", "varint-11-bytes", "short-fixed64",
        "short-payload", "tag-over-32-bits", "id-not-utf8", "varint-10-bytes", "group-in-spec", "services-as-group"])
def test_malformed_replies_fail_as_protobuf_fails(raw: bytes) -> None:
    assert_same(raw)


def test_the_field_numbers_and_enum_names_are_the_protos() -> None:
    messages = {**cpb.DESCRIPTOR.message_types_by_name, **pb.DESCRIPTOR.message_types_by_name}
    for key, number in svclswire.FIELDS.items():
        message, name = key.split(".")
        assert messages[message].fields_by_name[name].number == number, key
    by_number = lambda enum: [name for name, _ in sorted(enum.items(), key=lambda item: item[1])]  # noqa: E731
    assert tuple(n.lower().replace("_", " ") for n in by_number(pb.ServiceSpec.Mode)) == listing.MODE_NAMES
    assert tuple(n.lower() for n in by_number(pb.PortConfig.Protocol)) == service_rows.PROTOCOL_NAMES
    assert (service_rows.INGRESS, service_rows.HOST) == (pb.PortConfig.INGRESS, pb.PortConfig.HOST)
    modes = (service_rows.REPLICATED, service_rows.GLOBAL, service_rows.REPLICATED_JOB, service_rows.GLOBAL_JOB)
    assert modes == (pb.ServiceSpec.REPLICATED, pb.ServiceSpec.GLOBAL, pb.ServiceSpec.REPLICATED_JOB, pb.ServiceSpec.GLOBAL_JOB)


def test_an_unknown_mode_or_protocol_is_refused_by_the_rows_as_by_protobufs_names() -> None:
    view = service_rows.ServiceView()
    view.mode = -1
    with pytest.raises(ValueError, match="unknown service mode -1"):
        service_rows.record(view, None)
    with pytest.raises(ValueError, match="unknown port protocol 7"):
        service_rows.port_text((7, 80, 8080, service_rows.INGRESS))
