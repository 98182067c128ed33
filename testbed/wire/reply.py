"""What the agent answers, and when a TCP request is complete: pure code, no sockets.

Where it sits: the agent (agent/server.py) serves every declared container port of every emulated
pod. Its reply says who answered (pod, container, port) and what the server *saw* (the peer
address after any SNAT, the local address after any DNAT). That JSON object is the basis of every
NAT, Service and NetworkPolicy check: the prober (traffic/prober.py) records it next to the probe.

Over TCP the agent accepts two dialects: a probe line (`PROBE <id>\\n`, answered with the JSON and
"\\n") and HTTP/1.x (answered like a tiny web server, so that wget or curl run from a pod's shell
behave as against nginx).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: Bounds on reading a TCP request: after this many bytes or seconds we answer anyway, so a client
#: that sends nothing (nc, a health check) still gets the reply and nothing is held forever.
MAX_REQUEST_BYTES = 4096
REQUEST_TIMEOUT_S = 2.0

HTTP_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"CONNECT")

REPLY_KEYS = ("pod", "namespace", "node", "container", "protocol", "port", "peer_ip", "peer_port", "local_ip")


@dataclass(frozen=True)
class PortIdentity:
    """Who is answering on one declared container port."""

    pod: str
    namespace: str
    node: str
    container: str
    protocol: str  # "TCP" | "UDP" | "SCTP"
    port: int


def make_reply(who: PortIdentity, peer_ip: str, peer_port: int, local_ip: str) -> dict[str, Any]:
    """The reply object: identity of the server plus the addresses as the server saw them."""
    return {
        "pod": who.pod,
        "namespace": who.namespace,
        "node": who.node,
        "container": who.container,
        "protocol": who.protocol,
        "port": who.port,
        "peer_ip": peer_ip,
        "peer_port": peer_port,
        "local_ip": local_ip,
    }


def encode_reply(who: PortIdentity, peer_ip: str, peer_port: int, local_ip: str) -> bytes:
    """The reply as compact JSON bytes (what goes in a UDP datagram or an SCTP State Cookie)."""
    return json.dumps(make_reply(who, peer_ip, peer_port, local_ip), separators=(",", ":")).encode()


class ReplyEncoder:
    """encode_reply for one identity, byte for byte, without a dict or json.dumps per answer:
    the identity's part is encoded once and the three addresses appended (the agent answers
    thousands of TCP probes a second, issue 18). Addresses are the kernel's text (digits, dots,
    colons, hex, a `%` scope): nothing in them needs JSON escaping."""

    __slots__ = ("who", "_head")

    def __init__(self, who: PortIdentity) -> None:
        self.who = who
        whole = encode_reply(who, "", 0, "")
        self._head = whole[: whole.rindex(b'"peer_ip":') + len(b'"peer_ip":"')]

    def __call__(self, peer_ip: str, peer_port: int, local_ip: str) -> bytes:
        return b'%s%s","peer_port":%d,"local_ip":"%s"}' % (
            self._head,
            peer_ip.encode(),
            peer_port,
            local_ip.encode(),
        )


def decode_reply(data: bytes) -> dict[str, Any] | None:
    """The reply object from bytes a client received; None if they are not a reply."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) and "pod" in obj else None


@dataclass(frozen=True)
class Request:
    """A TCP request as far as the agent cares: HTTP (with its method) or a plain line."""

    http: bool
    method: str = ""
    line: bytes = b""


def is_http_request_line(line: bytes) -> bool:
    """Does this first line look like `METHOD target HTTP/x.y`?"""
    method, _, rest = line.partition(b" ")
    return method in HTTP_METHODS and b"HTTP/" in rest


def _header_end(buf: bytes) -> int:
    """Offset just past the blank line ending the headers, or -1 (accepts bare \\n endings)."""
    ends = [i + len(sep) for sep in (b"\r\n\r\n", b"\n\n") if (i := buf.find(sep)) >= 0]
    return min(ends) if ends else -1


def _content_length(head: bytes) -> int:
    for raw in head.split(b"\n")[1:]:
        name, sep, value = raw.partition(b":")
        if sep and name.strip().lower() == b"content-length":
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def parse_request(buf: bytes, final: bool = False) -> Request | None:
    """The request in buf, or None while more bytes are needed.

    final means no more bytes will be waited for (peer closed its side, 4 KiB read, or 2 s
    passed): then whatever arrived is taken as the request, so the client always gets an answer.
    """
    final = final or len(buf) >= MAX_REQUEST_BYTES
    nl = buf.find(b"\n")
    if nl < 0:
        if not final:
            return None
        first = buf.rstrip(b"\r")
        if is_http_request_line(first):
            return Request(True, first.split(b" ", 1)[0].decode(), first)
        return Request(False, line=first)
    first = buf[:nl].rstrip(b"\r")
    if not is_http_request_line(first):
        return Request(False, line=first)
    method = first.split(b" ", 1)[0].decode()
    end = _header_end(buf)
    if end < 0:
        return Request(True, method, first) if final else None
    # Wait for a declared body too: closing with unread bytes would make the kernel send RST,
    # which can destroy our answer before the client reads it.
    if len(buf) - end < _content_length(buf[:end]) and not final:
        return None
    return Request(True, method, first)


def tcp_response(request: Request, body: bytes) -> bytes:
    """The bytes to send back on TCP: an HTTP response or the JSON line."""
    if not request.http:
        return body + b"\n"
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"Server: testbed-agent\r\n\r\n"
    )
    return head if request.method == "HEAD" else head + body
