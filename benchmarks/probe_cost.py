"""Benchmark: where a TCP probe's time goes (issue 18): CPU per 1,000 probes, against a floor.

    sudo .venv/bin/python benchmarks/probe_cost.py [--pods 100] [--rounds 3]

Builds `testbed bench`'s all-pairs cluster once (--pods pods on 3 workers, every ordered pair over
TCP 80) and runs its probes in rounds, each round the three ways back to back, so that they share
the VM's load:

  prober   run_probes() in one thread (workers=1)
  threads  run_probes() as `testbed bench` calls it (one thread per core for a large run)
  floor    the least Python that makes the same syscalls for the same probes: socket, the two
           socket options, connect, getsockname, epoll, send, getsockopt(TCP_INFO), recv, close
           (no results, no timeouts, no checks): what is left of the prober without its Python

For each: the wall rate, and CPU seconds per 1,000 probes of this process (user / system) and
of the agent (user / system), with the load average. The prober's system time against the
floor's says how much of a probe is the kernel's (its packets' path through the veths, bridges
and netfilter runs in the sending thread); on a shared VM the wall rate follows the load, the
CPU per probe much less. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from probe_ab import all_pairs, cpu_of  # noqa: E402  (the same cluster and measure as the A/B)

from testbed.netns import NetnsSwitcher  # noqa: E402
from testbed.traffic.prober import _LINGER0, Probe, run_probes  # noqa: E402


def floor(probes: list[Probe], concurrency: int = 1024) -> int:
    """The prober's syscalls for TCP probes that all connect, and nothing else; returns answers."""
    ep, switcher = select.epoll(), NetnsSwitcher()
    live: dict[int, list] = {}  # fd -> [socket, request sent]
    nxt = answered = 0
    out, into = select.EPOLLOUT | select.EPOLLIN | select.EPOLLET, select.EPOLLIN
    try:
        while nxt < len(probes) or live:
            if nxt < len(probes) and len(live) <= concurrency - 64:
                batch, nxt = (
                    probes[nxt : nxt + concurrency - len(live)],
                    min(len(probes), nxt + concurrency - len(live)),
                )
                made = []
                for ns in dict.fromkeys(p.src_netns for p in batch):
                    with switcher.entered(ns):
                        for p in batch:
                            if p.src_netns == ns:
                                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
                                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER0)
                                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
                                made.append((s, p))
                for s, p in made:
                    s.connect_ex((p.dst_ip, p.port))
                    s.getsockname()
                    ep.register(s.fileno(), out)
                    live[s.fileno()] = [s, p.id]
            for fd, events in ep.poll(1.0, 1024):
                entry = live[fd]
                s = entry[0]
                if entry[1] is not None:
                    s.send(b"PROBE %d\n" % entry[1])
                    s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
                    entry[1] = None
                    if not events & into:
                        continue
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                if b"\n" in data or not data:
                    answered += b"\n" in data
                    del live[fd]
                    s.close()
    finally:
        for entry in live.values():
            entry[0].close()
        ep.close()
        switcher.close()
    return answered


def measure(name: str, run, probes: list[Probe], agents: list[int]) -> None:
    me0, ag0 = resource.getrusage(resource.RUSAGE_SELF), cpu_of(agents)
    t0 = time.perf_counter()
    answered = run(probes)
    wall = time.perf_counter() - t0
    me1, ag1 = resource.getrusage(resource.RUSAGE_SELF), cpu_of(agents)
    per_k = 1000.0 / len(probes)
    print(
        f"{name:8} {answered:6,} answered  {len(probes) / wall:7,.0f} probes/s  CPU s per 1,000 probes: "
        f"this process {(me1.ru_utime - me0.ru_utime) * per_k:.3f} user + {(me1.ru_stime - me0.ru_stime) * per_k:.3f} system, "
        f"agent {(ag1[0] - ag0[0]) * per_k:.3f} + {(ag1[1] - ag0[1]) * per_k:.3f}  (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def connected(results) -> int:
    return sum(1 for r in results if r.outcome == "connected")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, kernel {platform.release()}, python {platform.python_version()}")
    with all_pairs(args.pods) as (_, agents, probes):
        ways = (
            ("prober", lambda ps: connected(run_probes(ps, workers=1))),
            ("threads", lambda ps: connected(run_probes(ps))),
            ("floor", floor),
        )
        for _ in range(args.rounds):
            for name, run in ways:
                measure(name, run, probes, agents)
                time.sleep(0.5)


if __name__ == "__main__":
    main()
