"""The agent's TCP listener on loopback (no root): quick ACKs off for what it accepts."""

from __future__ import annotations

import socket

import pytest

from testbed.agent.accesslog import AccessLog
from testbed.agent.endpoints import TcpListener
from testbed.wire.reply import PortIdentity


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
