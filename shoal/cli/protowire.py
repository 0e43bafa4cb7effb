"""Protobuf's wire format read by hand, for the fast ``svc ls`` that must not load google.protobuf.

Importing the protobuf runtime and the generated classes costs ~35 ms, a third of the whole command;
reading the few fields ``svc ls`` prints from the reply costs well under a millisecond. This module is
the generic half: walk the fields of one message (numbers, wire types, values) the way protobuf's
parser sees them -- varints of at most 10 bytes kept to 64 bits, fixed 32/64-bit values, length-
delimited payloads bounded by their message, groups skipped whole -- and raise WireError on what
protobuf would refuse to parse as a message (a truncated field, a field number 0, wire type 6 or 7, an
unbalanced group). svclswire.py is the other half: which fields, driven by numbers from the .proto.

What it does not check: UTF-8 inside the fields a reader skips (protobuf checks every string field);
shoal's manager serializes with protobuf, so it never sends such bytes.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1


class WireError(ValueError):
    """Bytes that are not a protobuf message (the reply is unusable, as protobuf's DecodeError says)."""


def varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The varint at ``pos`` (as an unsigned 64-bit value) and the position after it."""
    result = shift = 0
    while pos < end:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & MASK64, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")
    raise WireError("truncated varint")


def fields(buf: bytes, pos: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int, int]]:
    """The fields of the message in ``buf[pos:end]``, in wire order, groups left out:
    ``(number, wire type, a, b)`` where a varint or fixed field's value is ``a`` (unsigned; ``b`` 0) and a
    length-delimited field's payload is ``buf[a:b]``."""
    end = len(buf) if end is None else end
    while pos < end:
        number, wire, pos = _tag(buf, pos, end)
        if wire == SGROUP:
            pos = _skip_group(buf, pos, end, number)
            continue
        if wire == EGROUP:
            raise WireError("end of a group that was not started")
        value, pos = _value(buf, pos, end, wire)
        if wire == LEN:
            yield number, wire, value, pos
        else:
            yield number, wire, value, 0


def _tag(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    tag, pos = varint(buf, pos, end)
    if tag > MASK32 or tag >> 3 == 0:
        raise WireError(f"invalid field tag {tag}")
    if tag & 7 > I32:
        raise WireError(f"invalid wire type {tag & 7}")
    return tag >> 3, tag & 7, pos


def _value(buf: bytes, pos: int, end: int, wire: int) -> tuple[int, int]:
    """A non-group field's value (for LEN: where its payload starts) and the position after the field."""
    if wire == VARINT:
        return varint(buf, pos, end)
    size = 8 if wire == I64 else 4 if wire == I32 else 0
    if wire == LEN:
        size, pos = varint(buf, pos, end)
        if size > end - pos:
            raise WireError("length-delimited field runs past its message")
        return pos, pos + size
    if size > end - pos:
        raise WireError("truncated fixed-size field")
    return int.from_bytes(buf[pos : pos + size], "little"), pos + size


def _skip_group(buf: bytes, pos: int, end: int, number: int) -> int:
    """The position after the group ``number`` that starts at ``pos`` (nested groups included)."""
    while pos < end:
        inner, wire, pos = _tag(buf, pos, end)
        if wire == EGROUP:
            if inner != number:
                raise WireError("a group ends with another group's number")
            return pos
        pos = _skip_group(buf, pos, end, inner) if wire == SGROUP else _value(buf, pos, end, wire)[1]
    raise WireError("truncated group")


def text(buf: bytes, a: int, b: int) -> str:
    """A string field's payload: UTF-8, as protobuf requires of proto3 strings."""
    try:
        return buf[a:b].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(f"string field is not UTF-8: {exc}") from None


def int32(value: int) -> int:
    """An int32 or enum field's varint as protobuf reads it (the low 32 bits, signed)."""
    value &= MASK32
    return value - (1 << 32) if value >= 1 << 31 else value


def int64(value: int) -> int:
    """An int64 field's varint as a signed value."""
    return value - (1 << 64) if value >= 1 << 63 else value
