"""The prober's reply window on loopback (no root): at most REPLY_WINDOW probes of a runner wait
for their answer, the request goes right after connect, and a slow server does not serialise a run."""

from __future__ import annotations

import select
import socket
import threading
import time

import pytest

from testbed.traffic import prober
from testbed.traffic.prober import Probe, run_probes


class HoldingServer:
    """Accepts, reads each request line and answers it (a JSON reply) only when `hold` lets it:
    counts how many requests were waiting for their answer at once."""

    def __init__(self, hold_until: int, answer_after: float) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.hold_until, self.answer_after = hold_until, answer_after
        self.most_waiting = 0
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        waiting: list[tuple[float, socket.socket]] = []
        self.sock.setblocking(False)
        while not self.stop:
            select.select([self.sock], [], [], 0.002)
            try:
                while True:
                    conn, _ = self.sock.accept()
                    conn.settimeout(2)
                    conn.recv(100)  # the request line (sent at once after the handshake)
                    waiting.append((time.monotonic(), conn))
            except BlockingIOError:
                pass
            self.most_waiting = max(self.most_waiting, len(waiting))
            # answer once `hold_until` requests waited at once (never, if above the probes' count),
            # else each after `answer_after` seconds
            if len(waiting) >= self.hold_until:
                due = waiting
            else:
                due = [w for w in waiting if time.monotonic() - w[0] >= self.answer_after]
            for w in due:
                w[1].sendall(b'{"pod":"p","peer_port":%d}\n' % w[1].getpeername()[1])
                w[1].close()
            waiting = [w for w in waiting if w not in due]
        for _, conn in waiting:
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def window_of_4(monkeypatch):
    monkeypatch.setattr(prober, "REPLY_WINDOW", 4)


def _probes(port: int, n: int, timeout: float = 3.0) -> list[Probe]:
    return [Probe(i, "", "127.0.0.1", port, "TCP", timeout) for i in range(n)]


def test_at_most_the_window_waits_for_an_answer(window_of_4, monkeypatch):
    monkeypatch.setattr(prober, "SLOW_ANSWER_S", 30.0)  # nobody leaves the window by age here
    server = HoldingServer(hold_until=1000, answer_after=0.02)
    try:
        results = run_probes(_probes(server.port, 24), workers=1)
    finally:
        server.close()
    assert [r.outcome for r in results] == ["connected"] * 24
    assert all(r.reply == {"pod": "p", "peer_port": r.sport} and r.error is None for r in results)
    assert all(r.latency_ms is not None and r.evidence == "" for r in results)
    assert 1 <= server.most_waiting <= 4  # 24 without the window


def test_slow_answers_leave_the_window(window_of_4, monkeypatch):
    """A server that answers only once 12 requests wait: with the window alone it would never
    see them (each probe would end at its timeout without an answer); waiting longer than
    SLOW_ANSWER_S takes a probe out of the window, so the others start."""
    monkeypatch.setattr(prober, "SLOW_ANSWER_S", 0.01)
    server = HoldingServer(hold_until=12, answer_after=1000.0)
    try:
        results = run_probes(_probes(server.port, 12), workers=1)
    finally:
        server.close()
    assert server.most_waiting == 12
    assert all(r.outcome == "connected" and r.reply is not None for r in results), results


def test_a_refusal_is_known_at_the_first_send():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: the handshake is refused with a RST
    port = closed.getsockname()[1]
    try:
        (result,) = run_probes(_probes(port, 1), workers=1)
    finally:
        closed.close()
    assert (result.outcome, result.error, result.evidence, result.reply) == ("refused", "ECONNREFUSED", "reset", None)
    assert result.sport > 0 and result.latency_ms is not None
