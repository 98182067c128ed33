"""The prober's verdict at a probe's deadline comes from its socket, not from a readiness event
alone (traffic/prober.py, `_Runner._last_look`): under CPU load, UDP answers were found queued
on sockets whose epoll event never came, and were recorded as timeouts. Here epoll loses every
event of the UDP sockets on purpose, against a UDP echo server on the loopback (no root)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from testbed.traffic.prober import Probe, _Runner


class _LosingEpoll:
    """An epoll that never reports the fds in `lost` (the missed edge), else the real one."""

    def __init__(self, runner: _Runner) -> None:
        self.real, self.runner = runner.ep, runner

    def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        events = self.real.poll(timeout, maxevents)
        udp = {fd for fd, f in self.runner.flights.items() if f.probe.protocol == "UDP"}
        return [(fd, ev) for fd, ev in events if fd not in udp]

    def __getattr__(self, name: str):  # register, unregister, close: the real epoll's
        return getattr(self.real, name)


@pytest.fixture
def udp_echo() -> Iterator[tuple[int, int]]:
    """(port that answers, port that is bound but never answers) on 127.0.0.1."""
    answering = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    answering.bind(("127.0.0.1", 0))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        answering.settimeout(0.05)
        while not stop.is_set():
            try:
                _, peer = answering.recvfrom(100)
            except TimeoutError:
                continue
            answering.sendto(b'{"pod": "echo"}\n', peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield answering.getsockname()[1], silent.getsockname()[1]
    stop.set()
    thread.join()
    answering.close()
    silent.close()


def _run(probes: list[Probe], lose: bool) -> list:
    runner = _Runner(probes, 64)
    if lose:
        runner.ep = _LosingEpoll(runner)  # type: ignore[assignment]
    return runner.run()


def test_an_answer_whose_event_never_came_is_read_at_the_deadline(udp_echo: tuple[int, int]) -> None:
    port, silent = udp_echo
    probes = [Probe(i, "", "127.0.0.1", port, "UDP", 0.2) for i in range(3)] + [
        Probe(3, "", "127.0.0.1", silent, "UDP", 0.2)
    ]
    results = _run(probes, lose=True)
    assert [r.outcome for r in results] == ["connected"] * 3 + ["timeout"]
    for r in results[:3]:
        assert r.reply == {"pod": "echo"} and r.sport > 0
        # when it arrived is unknown: no latency, and the record says why
        assert r.latency_ms is None and "no readiness event" in (r.error or "")
    assert results[3].reply is None and results[3].evidence == "timeout"


def test_answers_seen_in_time_keep_their_latency(udp_echo: tuple[int, int]) -> None:
    port, _ = udp_echo
    results = _run([Probe(i, "", "127.0.0.1", port, "UDP", 1.0) for i in range(3)], lose=False)
    assert [r.outcome for r in results] == ["connected"] * 3
    assert all(r.latency_ms is not None and r.latency_ms < 1000 and r.error is None for r in results)


def test_a_tcp_handshake_whose_event_never_came_is_connected_at_the_deadline() -> None:
    """A TCP probe whose events are all lost: the handshake the kernel completed still counts,
    with the kernel's own RTT (a listener that never answers: the reply stays incomplete)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        runner = _Runner([Probe(0, "", "127.0.0.1", listener.getsockname()[1], "TCP", 0.2)], 8)
        real = runner.ep

        class _LoseAll(_LosingEpoll):
            def poll(self, timeout: float = -1, maxevents: int = -1) -> list[tuple[int, int]]:
                events = self.real.poll(timeout, maxevents)
                return [(fd, ev) for fd, ev in events if fd not in self.runner.flights]

        runner.ep = _LoseAll(runner)  # type: ignore[assignment]
        (result,) = runner.run()
        assert real.closed
    finally:
        listener.close()
    assert result.outcome == "connected" and result.reply is None
    assert result.latency_ms is not None  # the handshake's RTT, measured by the kernel


def test_lost_events_without_the_last_look_would_time_out(
    udp_echo: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test above can fail: without the last look, the same lost events give timeouts."""
    port, _ = udp_echo
    monkeypatch.setattr(_Runner, "_last_look", lambda self, f: None)
    results = _run([Probe(0, "", "127.0.0.1", port, "UDP", 0.2)], lose=True)
    assert results[0].outcome == "timeout"
