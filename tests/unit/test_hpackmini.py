"""shoal/cli/hpackmini.py against the hpack package: what it encodes hpack reads, what hpack encodes without
Huffman coding it reads (static and dynamic table, size updates), and it refuses what it cannot read."""

from __future__ import annotations

import pytest
from hpack import Decoder, Encoder
from hpack.table import HeaderTable
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.cli import hpackmini

NAMES = st.sampled_from([":status", "content-type", "grpc-status", "grpc-message", "x-custom", "te", "date"])
VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)
HEADERS = st.lists(st.tuples(NAMES, VALUES), max_size=8)


def test_the_static_table_is_rfc_7541s() -> None:
    assert [(n.decode(), v.decode()) for n, v in HeaderTable.STATIC_TABLE] == list(hpackmini.STATIC)


@given(HEADERS)
def test_what_it_encodes_hpack_reads(headers: list[tuple[str, str]]) -> None:
    assert Decoder().decode(hpackmini.encode(headers)) == headers


@settings(max_examples=200)
@given(st.lists(HEADERS, min_size=1, max_size=4), st.sampled_from([4096, 256, 0]))
def test_it_reads_a_connections_blocks_as_hpack_does_without_huffman(blocks: list, table_size: int) -> None:
    enc, ref, mine = Encoder(), Decoder(), hpackmini.Decoder()
    enc.header_table_size = table_size  # a size update at the start of the next block, then evictions
    for headers in blocks:
        block = enc.encode(headers, huffman=False)
        assert mine.decode(block) == ref.decode(block)


def test_a_huffman_coded_string_and_broken_blocks_are_refused() -> None:
    with pytest.raises(hpackmini.HuffmanCoded):
        hpackmini.Decoder().decode(Encoder().encode([("grpc-status-details-bin", "abcdef")], huffman=True))
    for bad in (b"\x80", b"\xff\xff\xff\xff\xff\xff\x7f", b"\x00\x05ab", b"\x40\x03abc\x7f\xff", b"\xbf\x7f", b"\x3f\xe1\x7f"):
        with pytest.raises(hpackmini.HpackError):
            hpackmini.Decoder().decode(bad)


@pytest.mark.parametrize(("value", "prefix", "coded"), [(10, 5, b"\x0a"), (1337, 5, b"\x1f\x9a\x0a"), (42, 8, b"\x2a")])
def test_integers_as_rfc_7541_codes_them(value: int, prefix: int, coded: bytes) -> None:
    assert hpackmini.integer(value, prefix) == coded
    assert hpackmini.read_integer(coded, 0, prefix) == (value, len(coded))
