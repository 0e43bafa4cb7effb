"""HPACK (RFC 7541) header blocks for unixrpc.py, without the ``hpack`` package's import cost.

Loading ``hpack`` loads ``logging`` (and with it traceback, tokenize, threading...): ~12 ms, an eighth
of what ``shoal svc ls`` may take in all. A gRPC call needs little of HPACK: our request goes as literal
fields (no indexing, no Huffman coding: always valid), and the reply's few blocks are indexed or literal
fields against the static table and a dynamic one. That is all this module does. A string the server
Huffman-coded -- grpc's server does so only for binary (``-bin``) headers -- raises HuffmanCoded, and
unixrpc then decodes the reply's blocks with the ``hpack`` package, which reads everything.
"""

from __future__ import annotations

STATIC = (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
    (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
    (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
    ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
    ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
    ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
    ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
    ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
    ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
    ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
)
"""The static table (RFC 7541 Appendix A): index 1 is STATIC[0]."""
ENTRY_OVERHEAD = 32  # RFC 7541 4.1: an entry's size is its name's and value's octets plus 32


class HpackError(ValueError):
    """A header block that is not valid HPACK."""


class HuffmanCoded(HpackError):
    """A Huffman-coded string: beyond this module (unixrpc decodes the reply with the hpack package)."""


def encode(headers: list[tuple[str, str]]) -> bytes:
    """A header block of literal fields without indexing and without Huffman coding (RFC 7541 6.2.2)."""
    out = bytearray()
    for name, value in headers:
        out.append(0)
        for text in (name, value):
            raw = text.encode()
            out += integer(len(raw), 7) + raw
    return bytes(out)


def integer(value: int, prefix: int, first: int = 0) -> bytes:
    """``value`` in HPACK's integer coding with a ``prefix``-bit prefix (RFC 7541 5.1)."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out, value = bytearray([first | limit]), value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


class Decoder:
    """Decodes one connection's header blocks in order (they share the dynamic table)."""

    def __init__(self, max_size: int = 4096) -> None:
        self.limit = max_size  # SETTINGS_HEADER_TABLE_SIZE as we (do not) set it: the default
        self.max_size = max_size
        self.size = 0
        self.dynamic: list[tuple[str, str, int]] = []  # newest first: name, value, entry size

    def decode(self, block: bytes) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        i = 0
        try:
            while i < len(block):
                first = block[i]
                if first & 0x80:  # indexed field
                    index, i = read_integer(block, i, 7)
                    out.append(self.entry(index))
                elif first & 0x40:  # literal with incremental indexing
                    name, value, i = self.literal(block, i, 6)
                    self.add(name, value)
                    out.append((name, value))
                elif first & 0x20:  # dynamic table size update
                    size, i = read_integer(block, i, 5)
                    if size > self.limit:
                        raise HpackError(f"table size {size} over the limit {self.limit}")
                    self.max_size = size
                    self.evict()
                else:  # literal without indexing (0000) or never indexed (0001)
                    name, value, i = self.literal(block, i, 4)
                    out.append((name, value))
        except IndexError:
            raise HpackError("header block ends inside a field") from None
        return out

    def entry(self, index: int) -> tuple[str, str]:
        if 1 <= index <= len(STATIC):
            return STATIC[index - 1]
        if len(STATIC) < index <= len(STATIC) + len(self.dynamic):
            name, value, _ = self.dynamic[index - len(STATIC) - 1]
            return name, value
        raise HpackError(f"no table entry {index}")

    def literal(self, block: bytes, i: int, prefix: int) -> tuple[str, str, int]:
        index, i = read_integer(block, i, prefix)
        if index:
            name = self.entry(index)[0]
        else:
            name, i = read_string(block, i)
        value, i = read_string(block, i)
        return name, value, i

    def add(self, name: str, value: str) -> None:
        size = len(name.encode()) + len(value.encode()) + ENTRY_OVERHEAD
        self.dynamic.insert(0, (name, value, size))
        self.size += size
        self.evict()

    def evict(self) -> None:
        while self.size > self.max_size and self.dynamic:
            self.size -= self.dynamic.pop()[2]


def read_integer(block: bytes, i: int, prefix: int) -> tuple[int, int]:
    """(value, next offset) of the integer at ``i`` (RFC 7541 5.1); IndexError past the end."""
    limit = (1 << prefix) - 1
    value = block[i] & limit
    i += 1
    if value < limit:
        return value, i
    shift = 0
    while True:
        byte = block[i]
        i += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i
        if shift > 28:
            raise HpackError("integer too large")


def read_string(block: bytes, i: int) -> tuple[str, int]:
    """(text, next offset) of the string literal at ``i`` (RFC 7541 5.2)."""
    huffman = block[i] & 0x80
    length, i = read_integer(block, i, 7)
    if i + length > len(block):
        raise HpackError("string runs past the header block")
    if huffman:
        raise HuffmanCoded("Huffman-coded string")
    return block[i : i + length].decode(errors="replace"), i + length
