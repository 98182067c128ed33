"""The agent's TCP listener on loopback (no root): quick ACKs off for what it accepts, a probe line
answered at accept without a connection object, everything else through TcpConn as before."""

from __future__ import annotations

import select
import socket
import time

import pytest

from testbed.agent.accesslog import AccessLog
from testbed.agent.endpoints import TcpListener
from testbed.wire.reply import PortIdentity, ReplyEncoder, decode_reply


class LoopbackListener(TcpListener):
    ANY = "127.0.0.1"  # the agent's listener bound to loopback only (the agent binds 0.0.0.0)


class FakeAgent:
    """What an endpoint asks of the agent (agent/server.py): its epoll, timers, warnings, log."""

    def __init__(self, folder: str) -> None:
        self.access = AccessLog(folder)
        self.handlers: dict[int, object] = {}
        self.timers: list[object] = []
        self.warnings: list[str] = []

    def register(self, fd: int, events: int, handler: object) -> None:
        self.handlers[fd] = handler

    def modify(self, fd: int, events: int) -> None:
        pass

    def unregister(self, fd: int) -> None:
        self.handlers.pop(fd, None)

    def add_timer(self, conn: object) -> None:
        self.timers.append(conn)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


@pytest.fixture
def served(tmp_path):
    agent = FakeAgent(str(tmp_path / "access"))
    listener = LoopbackListener(agent, PortIdentity("web-1", "default", "kind-worker", "nginx", "TCP", 0))
    port = listener.sock.getsockname()[1]
    listener.who = PortIdentity("web-1", "default", "kind-worker", "nginx", "TCP", port)
    yield agent, listener, port
    listener.close()


def _client(port: int, request: bytes) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    if request:
        client.sendall(request)
    return client


def _accept_ready(listener: TcpListener) -> None:
    assert select.select([listener.sock], [], [], 5)[0], "no connection to accept"
    time.sleep(0.05)  # let the request reach the accepted socket's queue too


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def _answer(listener: TcpListener, client: socket.socket) -> tuple[bytes, int]:
    """The listener accepts client's connection and answers it: what the client read, its port."""
    try:
        _accept_ready(listener)
        listener.on_event(select.EPOLLIN)
        return _read_all(client), client.getsockname()[1]  # the answer, then the FIN
    finally:
        client.close()


def test_the_listener_and_what_it_accepts_delay_their_acks(served):
    """Quick ACKs off on the listener after listen(): the accepted socket inherits it, so a
    request's ACK rides on the answer (5 packets a probe; integration test_agent_prober counts them)."""
    agent, listener, port = served
    assert listener.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 0
    client = _client(port, b"")
    try:
        accepted, _ = listener.sock.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 0
    finally:
        client.close()


def test_a_probe_line_is_answered_at_accept_with_the_same_bytes(served):
    agent, listener, port = served
    answer, cport = _answer(listener, _client(port, b"PROBE 7\n"))
    assert answer == ReplyEncoder(listener.who)("127.0.0.1", cport, "127.0.0.1") + b"\n"
    assert decode_reply(answer.rstrip(b"\n"))["peer_port"] == cport
    assert agent.handlers == {} and agent.timers == []  # no TcpConn was needed
    agent.access.flush()
    log = open(agent.access.path("default", "web-1")).read()
    assert log.endswith(f" TCP 127.0.0.1:{cport} -> 127.0.0.1:{port} container=nginx\n")


def test_http_and_late_requests_still_go_through_a_connection(served):
    agent, listener, port = served
    answer, _ = _answer(listener, _client(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b'"pod":"web-1"' in answer

    late = _client(port, b"")  # connected, the line not sent yet: a TcpConn waits for it
    try:
        _accept_ready(listener)
        listener.on_event(select.EPOLLIN)
        assert len(agent.handlers) == 1 and len(agent.timers) == 1
        late.sendall(b"PROBE 8\n")
        time.sleep(0.05)
        (handler,) = agent.handlers.values()
        handler(select.EPOLLIN)  # type: ignore[operator]
        answer = _read_all(late)
    finally:
        late.close()
    assert decode_reply(answer.rstrip(b"\n"))["pod"] == "web-1" and answer.endswith(b"}\n")
