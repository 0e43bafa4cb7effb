"""One gRPC unary call over a unix socket without grpcio: how ``shoal svc ls`` stays fast.

Importing grpcio costs a short CLI process 60-100 ms (its cygrpc core loads asyncio and ssl), more
than the whole call it is used for. For the simple read calls the CLI makes to the manager on this
machine's control socket, this module speaks just enough HTTP/2 (RFC 9113) and gRPC's wire format
itself: a fresh connection, the client preface and SETTINGS, one HEADERS and DATA request on stream
1, then frames are read until that stream ends -- answering the server's SETTINGS and PINGs -- and the
reply is the DATA's one length-prefixed message once the trailers say ``grpc-status: 0``. Header
blocks are coded by hpackmini.py (literal fields out; in, the static and dynamic tables), and by the
``hpack`` package when the server Huffman-codes a string, which grpc's does only for binary headers.
Our receive windows are opened to the maximum at once, so a large reply never waits on a
WINDOW_UPDATE; the request must fit the server's initial window (64 KiB), which a read call does.

Failures raise ``RpcFailure`` with the status name gRPC would give (``UNAVAILABLE`` when nothing
listens, ``DEADLINE_EXCEEDED`` past the timeout, the server's own code and message otherwise), so the
CLI words them as it words grpcio's (hosts.failure_message). TLS, TCP hosts and streaming calls
stay with grpcio (client.py).
"""

from __future__ import annotations

# _socket is the C module under ``socket``: the same socket object without the wrapper, whose import
# (enum, selectors, collections) costs the fast ``svc ls`` ~5 ms. connect/sendall/recv/settimeout/close
# are the C object's own methods; its timeout is the builtin TimeoutError.
import _socket
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
STREAM = 1
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
MAX_FRAME = 16384  # the default SETTINGS_MAX_FRAME_SIZE, which we keep
MAX_MESSAGE = 4 * 1024 * 1024  # grpcio's default limit on a received message
MAX_HEADER_BLOCK = 65536
SETTINGS_ENABLE_PUSH, SETTINGS_INITIAL_WINDOW_SIZE = 2, 4

CODES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)
# HTTP statuses of a reply that is not gRPC, as gRPC maps them (its doc/http-grpc-status-mapping.md)
_HTTP_CODES = {"400": "INTERNAL", "401": "UNAUTHENTICATED", "403": "PERMISSION_DENIED", "404": "UNIMPLEMENTED",
               "429": "UNAVAILABLE", "502": "UNAVAILABLE", "503": "UNAVAILABLE", "504": "UNAVAILABLE"}
# RST_STREAM error codes, as gRPC maps them (REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY)
_RESET_CODES = {7: "UNAVAILABLE", 8: "CANCELLED", 11: "RESOURCE_EXHAUSTED", 12: "PERMISSION_DENIED"}


class RpcFailure(Exception):
    """A call that did not return a reply: ``code`` is gRPC's status name, ``details`` its message."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


def call(path: str, method: str, request: bytes, timeout: float) -> bytes:
    """Send the serialized ``request`` to ``method`` (``/package.Service/Method``) on the unix socket
    ``path``; return the serialized reply. RpcFailure on any failure, after at most ``timeout`` s."""
    if len(request) + 5 > DEFAULT_WINDOW:
        raise ValueError(f"request of {len(request)} bytes is larger than one call here carries")
    deadline = time.monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except TimeoutError:
            raise RpcFailure("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
        except OSError as exc:
            raise RpcFailure("UNAVAILABLE", f"failed to connect to unix:{path}: {exc.strerror or exc}") from None
        conn = _Connection(sock, deadline)
        conn.send(opening(method, request, timeout))
        return reply_message(*conn.read_stream())
    finally:
        sock.close()


def frame(ftype: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload."""
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + stream.to_bytes(4, "big") + payload


def opening(method: str, request: bytes, timeout: float) -> bytes:
    """Everything the client sends: preface, SETTINGS, the connection's window opened, the call."""
    from shoal.cli import hpackmini

    settings = b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big")
                        for k, v in ((SETTINGS_ENABLE_PUSH, 0), (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW)))
    headers = [(":method", "POST"), (":scheme", "http"), (":path", method), (":authority", "localhost"),
               ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", timeout_header(timeout)),
               ("user-agent", "shoal-cli")]
    body = b"\0" + len(request).to_bytes(4, "big") + request
    chunks = [body[i : i + MAX_FRAME] for i in range(0, len(body), MAX_FRAME)]
    data = b"".join(frame(DATA, END_STREAM if i == len(chunks) - 1 else 0, STREAM, c) for i, c in enumerate(chunks))
    return (PREFACE + frame(SETTINGS, 0, 0, settings)
            + frame(WINDOW_UPDATE, 0, 0, (MAX_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big"))
            + frame(HEADERS, END_HEADERS, STREAM, hpackmini.encode(headers)) + data)


def timeout_header(seconds: float) -> str:
    """gRPC's ``grpc-timeout`` value: at most 8 digits and a unit (milliseconds, else seconds)."""
    ms = max(1, int(seconds * 1000))
    return f"{ms}m" if ms < 10**8 else f"{min(int(seconds), 10**8 - 1)}S"


class _Connection:
    """The client end of one HTTP/2 connection: frames in, with the deadline applied to every read."""

    def __init__(self, sock: _socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise RpcFailure("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
        except OSError as exc:
            raise RpcFailure("UNAVAILABLE", f"socket closed: {exc.strerror or exc}") from None

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            left = self.deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                self.sock.settimeout(left)
                chunk = self.sock.recv(max(65536, n - len(self.buf)))
            except TimeoutError:
                raise RpcFailure("DEADLINE_EXCEEDED", "Deadline Exceeded") from None
            except OSError as exc:
                raise RpcFailure("UNAVAILABLE", f"socket closed: {exc.strerror or exc}") from None
            if not chunk:
                raise RpcFailure("UNAVAILABLE", "Socket closed by the server before the reply ended")
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self) -> tuple[int, int, int, bytes]:
        head = self.read_exact(9)
        length = int.from_bytes(head[:3], "big")
        if length > MAX_FRAME:
            raise RpcFailure("INTERNAL", f"HTTP/2 frame of {length} bytes is over the agreed maximum")
        return head[3], head[4], int.from_bytes(head[5:9], "big") & MAX_WINDOW, self.read_exact(length)

    def read_stream(self) -> tuple[list[dict[str, str]], bytes]:
        """Frames until stream 1 ends: its header blocks (headers, then trailers) and its DATA."""
        blocks: list[bytes] = []
        body = bytearray()
        block: bytearray | None = None
        ends = False
        while True:
            ftype, flags, stream, payload = self.read_frame()
            if stream == 0:
                self.connection_frame(ftype, flags, payload)
            elif stream != STREAM:
                continue
            elif ftype == RST_STREAM:
                code = int.from_bytes(payload[:4], "big")
                raise RpcFailure(_RESET_CODES.get(code, "INTERNAL"), f"stream reset by the server (HTTP/2 error {code})")
            elif ftype == DATA:
                body += unpadded(payload, flags)
                if len(body) > MAX_MESSAGE + 5:
                    raise RpcFailure("RESOURCE_EXHAUSTED", f"reply larger than the limit of {MAX_MESSAGE} bytes")
                if flags & END_STREAM:
                    return decoded(blocks), bytes(body)
            elif ftype in (HEADERS, CONTINUATION):
                if ftype == HEADERS:
                    payload = unpadded(payload, flags)
                    block, ends, payload = bytearray(), bool(flags & END_STREAM), payload[5:] if flags & PRIORITY else payload
                if block is None:
                    raise RpcFailure("INTERNAL", "HTTP/2 CONTINUATION without HEADERS")
                block += payload
                if len(block) > MAX_HEADER_BLOCK:
                    raise RpcFailure("INTERNAL", f"reply headers over {MAX_HEADER_BLOCK} bytes")
                if flags & END_HEADERS:
                    blocks.append(bytes(block))
                    block = None
                    if ends:
                        return decoded(blocks), bytes(body)

    def connection_frame(self, ftype: int, flags: int, payload: bytes) -> None:
        """Answer the server's SETTINGS and PINGs; a GOAWAY that leaves our stream unprocessed fails the call."""
        if ftype == SETTINGS and not flags & ACK:
            self.send(frame(SETTINGS, ACK, 0))
        elif ftype == PING and not flags & ACK:
            self.send(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY and int.from_bytes(payload[:4], "big") & MAX_WINDOW < STREAM:
            debug = payload[8:].decode(errors="replace")
            raise RpcFailure("UNAVAILABLE", f"the server is closing the connection (GOAWAY) {debug}".rstrip())


def unpadded(payload: bytes, flags: int) -> bytes:
    """A DATA or HEADERS payload without its padding (PADDED flag: a length byte, then that many at the end)."""
    if not flags & PADDED:
        return payload
    if not payload or payload[0] >= len(payload):
        raise RpcFailure("INTERNAL", "HTTP/2 frame with bad padding")
    return payload[1 : len(payload) - payload[0]]


def decoded(blocks: list[bytes]) -> list[dict[str, str]]:
    """The reply's header blocks as dicts, decoded in order (they share HPACK's dynamic table): by
    hpackmini, or by the hpack package when the server Huffman-coded a string."""
    from shoal.cli import hpackmini

    try:
        decoder = hpackmini.Decoder()
        return [dict(decoder.decode(b)) for b in blocks]
    except hpackmini.HuffmanCoded:
        pass
    except hpackmini.HpackError as exc:
        raise RpcFailure("INTERNAL", f"unreadable reply headers: {exc}") from None
    from hpack import Decoder, HPACKError

    try:
        full = Decoder()
        return [{str(name): str(value) for name, value in full.decode(b)} for b in blocks]
    except HPACKError as exc:
        raise RpcFailure("INTERNAL", f"unreadable reply headers: {exc}") from None


def reply_message(blocks: list[dict[str, str]], body: bytes) -> bytes:
    """The reply's message from its header blocks and DATA, or the failure its status names."""
    headers = blocks[0] if blocks else {}
    status = headers.get(":status", "")
    if status != "200":
        raise RpcFailure(_HTTP_CODES.get(status, "UNKNOWN"), f"the server answered HTTP status {status or 'none'}")
    trailers = blocks[-1]
    if "grpc-status" not in trailers:
        raise RpcFailure("INTERNAL", "the reply ended without a grpc-status")
    code = trailers["grpc-status"]
    name = CODES[int(code)] if code.isdigit() and int(code) < len(CODES) else "UNKNOWN"
    if name != "OK":
        raise RpcFailure(name, percent_decoded(trailers.get("grpc-message", "")))
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        raise RpcFailure("INTERNAL", "the reply is not one uncompressed gRPC message")
    return body[5:]


def percent_decoded(text: str) -> str:
    """``grpc-message`` as sent (UTF-8, percent-encoded outside printable ASCII) back to text."""
    if "%" not in text:
        return text
    raw, out, i = text.encode(), bytearray(), 0
    while i < len(raw):
        pair = raw[i + 1 : i + 3]
        if raw[i] == 0x25 and len(pair) == 2 and all(c in _HEX for c in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="replace")


_HEX = b"0123456789abcdefABCDEF"
