"""shoal/cli/unixrpc.py against a scripted HTTP/2 peer on a unix socket: what it sends, and each way a
reply can go (the real gRPC server is tests/integration/test_unixrpc_grpc.py's)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hpack import Decoder, Encoder

from shoal.cli import hosts, unixrpc
from shoal.cli.unixrpc import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PADDED,
    PING,
    RST_STREAM,
    SETTINGS,
    RpcFailure,
    frame,
)

OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


class Peer:
    """Accepts one connection, reads the client's opening, runs ``script(conn, peer)``; keeps what it read."""

    def __init__(self, path: Path, script: Callable[[socket.socket, Peer], None]) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.script = script
        self.frames: list[tuple[int, int, int, bytes]] = []
        self.buf = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            self.conn = conn
            self.buf = self.read(conn, len(unixrpc.PREFACE))
            while not any(f[0] == DATA and f[1] & END_STREAM for f in self.frames):
                self.frames.append(self.read_frame(conn))
            self.script(conn, self)

    def read(self, conn: socket.socket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def read_frame(self, conn: socket.socket) -> tuple[int, int, int, bytes]:
        head = self.read(conn, 9)
        n = int.from_bytes(head[:3], "big")
        return head[3], head[4], int.from_bytes(head[5:9], "big"), self.read(conn, n)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def headers(fields: list[tuple[str, str]], enc: Encoder, flags: int = END_HEADERS) -> bytes:
    return frame(HEADERS, flags, 1, enc.encode(fields))


def message(payload: bytes, flag: int = 0) -> bytes:
    return bytes([flag]) + len(payload).to_bytes(4, "big") + payload


@pytest.fixture
def serve(tmp_path: Path):
    peers: list[Peer] = []

    def start(script: Callable[[socket.socket, Peer], None]) -> tuple[str, Peer]:
        path = tmp_path / f"p{len(peers)}.sock"
        peers.append(Peer(path, script))
        return str(path), peers[-1]

    yield start
    for p in peers:
        p.close()


def test_the_request_is_a_grpc_call_on_stream_one(serve) -> None:
    def script(conn: socket.socket, peer: Peer) -> None:
        enc = Encoder()
        conn.sendall(headers(OK_HEADERS, enc) + frame(DATA, 0, 1, message(b"reply"))
                     + headers([("grpc-status", "0")], enc, END_HEADERS | END_STREAM))

    path, peer = serve(script)
    assert unixrpc.call(path, "/shoal.v1.Control/ListServices", b"\x0a\x01x", 10.0) == b"reply"
    assert peer.buf == unixrpc.PREFACE
    kinds = [f[0] for f in peer.frames]
    assert kinds[:2] == [SETTINGS, unixrpc.WINDOW_UPDATE] and kinds[-2:] == [HEADERS, DATA]
    sent = dict(Decoder().decode(next(f[3] for f in peer.frames if f[0] == HEADERS)))
    assert sent[":method"] == "POST" and sent[":path"] == "/shoal.v1.Control/ListServices"
    assert sent["content-type"] == "application/grpc" and sent["te"] == "trailers" and sent["grpc-timeout"] == "10000m"
    assert peer.frames[-1][3] == message(b"\x0a\x01x") and peer.frames[-1][2] == 1


def test_plain_and_huffman_coded_reply_headers_both_read(serve) -> None:
    for huffman in (False, True):
        def script(conn: socket.socket, peer: Peer, huffman: bool = huffman) -> None:
            enc = Encoder()
            conn.sendall(frame(HEADERS, END_HEADERS, 1, enc.encode(OK_HEADERS, huffman=huffman))
                         + frame(DATA, 0, 1, message(b"r"))
                         + frame(HEADERS, END_HEADERS | END_STREAM, 1, enc.encode([("grpc-status", "0")], huffman=huffman)))

        path, _ = serve(script)
        assert unixrpc.call(path, "/s/M", b"", 5.0) == b"r"


def test_settings_and_pings_are_answered_and_split_padded_replies_joined(serve) -> None:
    acks: list[tuple[int, int, bytes]] = []

    def script(conn: socket.socket, peer: Peer) -> None:
        enc = Encoder()
        conn.sendall(frame(SETTINGS, 0, 0, b"") + frame(PING, 0, 0, b"12345678"))
        for _ in range(2):
            ftype, flags, _, payload = peer.read_frame(conn)
            acks.append((ftype, flags, payload))
        body = message(b"a" * 40000)
        block = enc.encode(OK_HEADERS)
        conn.sendall(frame(HEADERS, 0, 1, block[:1]) + frame(CONTINUATION, END_HEADERS, 1, block[1:])
                     + frame(unixrpc.WINDOW_UPDATE, 0, 0, (1000).to_bytes(4, "big"))
                     + frame(DATA, PADDED, 1, b"\x03" + body[:16000] + b"pad")
                     + frame(DATA, 0, 1, body[16000:32000]) + frame(DATA, 0, 1, body[32000:])
                     + headers([("grpc-status", "0"), ("grpc-message", "")], enc, END_HEADERS | END_STREAM))

    path, _ = serve(script)
    assert unixrpc.call(path, "/s/M", b"", 5.0) == b"a" * 40000
    assert (SETTINGS, 1, b"") in acks and (PING, 1, b"12345678") in acks


@pytest.mark.parametrize(("reply", "code", "details"), [
    ([(":status", "200"), ("grpc-status", "5"), ("grpc-message", "no such service: %C3%A9t%C3%A9 100%25")],
     "NOT_FOUND", "no such service: été 100%"),
    ([(":status", "200"), ("grpc-status", "14")], "UNAVAILABLE", ""),
    ([(":status", "200"), ("grpc-status", "99")], "UNKNOWN", ""),
    ([(":status", "200"), ("grpc-status", "3"), ("grpc-message", "bad %zz")], "INVALID_ARGUMENT", "bad %zz"),
    ([(":status", "503")], "UNAVAILABLE", "the server answered HTTP status 503"),
    ([(":status", "200")], "INTERNAL", "the reply ended without a grpc-status"),
])
def test_a_trailers_only_reply_is_the_failure_it_names(serve, reply, code, details) -> None:
    path, _ = serve(lambda conn, _: conn.sendall(headers(reply, Encoder(), END_HEADERS | END_STREAM)))
    with pytest.raises(RpcFailure) as e:
        unixrpc.call(path, "/s/M", b"", 5.0)
    assert (e.value.code, e.value.details) == (code, details)


@pytest.mark.parametrize(("frames", "code"), [
    (lambda enc: frame(RST_STREAM, 0, 1, (8).to_bytes(4, "big")), "CANCELLED"),
    (lambda enc: frame(RST_STREAM, 0, 1, (2).to_bytes(4, "big")), "INTERNAL"),
    (lambda enc: frame(GOAWAY, 0, 0, (0).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"shutting down"), "UNAVAILABLE"),
    (lambda enc: headers(OK_HEADERS, enc) + frame(DATA, END_STREAM, 1, message(b"x", flag=1)), "INTERNAL"),
    (lambda enc: headers(OK_HEADERS, enc) + frame(DATA, END_STREAM, 1, message(b"xy")[:-1]), "INTERNAL"),
    (lambda enc: headers(OK_HEADERS, enc) + frame(DATA, 0, 1, b"\0\0\0"), "UNAVAILABLE"),  # then the peer hangs up
])
def test_resets_goaways_bad_messages_and_hang_ups_fail_the_call(serve, frames, code) -> None:
    path, _ = serve(lambda conn, _: conn.sendall(frames(Encoder())))
    with pytest.raises(RpcFailure) as e:
        unixrpc.call(path, "/s/M", b"", 5.0)
    assert e.value.code == code


def test_a_silent_server_is_a_deadline(serve) -> None:
    release = threading.Event()
    path, _ = serve(lambda conn, _: release.wait(10))
    t0 = time.monotonic()
    with pytest.raises(RpcFailure) as e:
        unixrpc.call(path, "/s/M", b"", 0.3)
    release.set()
    assert e.value.code == "DEADLINE_EXCEEDED" and time.monotonic() - t0 < 3
    assert hosts.failure_message(e.value.code, e.value.details, "/m.sock") == "the shoal manager at /m.sock did not answer within 10s"


def test_nothing_listening_reads_as_cannot_connect(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.sock", tmp_path):  # no file; a directory, not a socket
        with pytest.raises(RpcFailure) as e:
            unixrpc.call(str(path), "/s/M", b"", 1.0)
        assert e.value.code == "UNAVAILABLE"
        assert hosts.failure_message(e.value.code, e.value.details, "unix:///x") == hosts.cannot_connect_message("unix:///x")


def test_a_request_larger_than_one_window_is_refused_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="larger"):
        unixrpc.call(str(tmp_path / "none.sock"), "/s/M", b"x" * 70000, 1.0)


@pytest.mark.parametrize(("seconds", "header"), [(10.0, "10000m"), (0.0001, "1m"), (200000.0, "200000S")])
def test_timeout_header(seconds: float, header: str) -> None:
    assert unixrpc.timeout_header(seconds) == header
