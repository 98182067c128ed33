"""bench/netns_settle.py: the wait for the kernel's namespace destruction between bench rows."""

from __future__ import annotations

import os

from testbed.bench.netns_settle import Settle, net_namespaces, netns_worker_busy, wait_netns_settled
from testbed.bench.suite import figures_from


class FakeKernel:
    """A clock that advances by each sleep, a slab count and a worker that are busy until `until`."""

    def __init__(self, until: float, start_count: int = 10_000, rate: int = 1_000) -> None:
        self.t, self.until, self.start_count, self.rate = 0.0, until, start_count, rate

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s

    def busy(self) -> bool:
        return self.t < self.until

    def count(self) -> int:
        return max(100, self.start_count - int(self.rate * self.t))


def test_waits_until_the_worker_is_idle_and_the_count_stops_falling() -> None:
    k = FakeKernel(until=5.0, rate=5_000)  # the count falls for 2 s, the worker runs for 5
    s = wait_netns_settled(bound=60, quiet=1.0, poll=0.1, count=k.count, busy=k.busy, clock=k.clock, sleep=k.sleep)
    assert not s.bound_hit
    assert 5.9 <= s.waited_s <= 6.3  # 5 s busy, then 1 s quiet
    assert s.namespaces_at_start == 10_000 and s.namespaces_at_end is not None and s.namespaces_at_end < 10_000
    assert "waited 6." in s.note() and "10000 -> " in s.note()


def test_a_falling_count_alone_keeps_it_waiting() -> None:
    k = FakeKernel(until=0.0, start_count=3_000, rate=1_000)  # worker idle, frees still landing for ~2.9 s
    s = wait_netns_settled(bound=60, quiet=1.0, poll=0.1, count=k.count, busy=k.busy, clock=k.clock, sleep=k.sleep)
    assert 3.7 <= s.waited_s <= 4.2 and not s.bound_hit


def test_the_wait_is_bounded_and_says_so() -> None:
    k = FakeKernel(until=1e9)
    s = wait_netns_settled(bound=10, quiet=1.0, poll=0.5, count=k.count, busy=k.busy, clock=k.clock, sleep=k.sleep)
    assert s.bound_hit and 10 <= s.waited_s <= 10.6
    assert "bound" in s.note() and "still destroying" in s.note()


def test_quiet_machine_returns_after_the_quiet_period() -> None:
    k = FakeKernel(until=0.0, start_count=100)
    s = wait_netns_settled(bound=60, quiet=1.0, poll=0.1, count=k.count, busy=k.busy, clock=k.clock, sleep=k.sleep)
    assert 1.0 <= s.waited_s <= 1.2 and not s.bound_hit


def test_readers_on_files(tmp_path) -> None:
    slab = tmp_path / "slabinfo"
    slab.write_text("slabinfo - version: 2.1\nnet_namespace        133    140   4288    7    8 : tunables\n")
    assert net_namespaces(str(slab)) == 133
    assert net_namespaces(str(tmp_path / "missing")) is None
    proc = tmp_path / "proc"
    for pid, comm in ((1, "init"), (7, "kworker/R-netns"), (9, "kworker/u8:2-netns")):
        os.makedirs(proc / str(pid))
        (proc / str(pid) / "comm").write_text(comm + "\n")
    assert not netns_worker_busy(str(proc))  # the rescuer and a worker whose last item was netns
    os.makedirs(proc / "12")
    (proc / "12" / "comm").write_text("kworker/u8:3+netns\n")
    assert netns_worker_busy(str(proc))


def test_the_first_change_row_of_each_mode_says_how_long_the_bench_waited() -> None:
    from tests.unit.test_bench_pure import REQUIRED_ROWS, change

    scale = change("scale Deployment bench 1000 -> 1010 (+10 endpoints)", 0.3)
    raw = {
        **REQUIRED_ROWS,
        "changes_1000": {
            "changes": [scale, change("label a pod access=true", 0.04)],
            "settle": Settle(12.5, False, 10_100, 150).to_dict(),
        },
        "changes_1000_nftables": {"changes": [scale], "settle": Settle(180.0, True, 9_000, 5_000).to_dict()},
    }
    notes = [f.note for f in figures_from(raw) if f.key == "change"]
    assert "before: waited 12.5 s for the kernel to destroy earlier namespaces (10100 -> 150" in notes[0]
    assert "waited" not in notes[1]
    assert "waited the bound, 180.0 s, and the kernel was still destroying namespaces" in notes[2]
    del raw["changes_1000"]["settle"]  # results written before the wait existed still read
    assert "waited" not in [f.note for f in figures_from(raw) if f.key == "change"][0]
