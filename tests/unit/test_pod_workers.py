"""emu/pod_workers.py: node jobs on several threads, stopping at the first failure (no root)."""

from __future__ import annotations

import threading

import pytest

from testbed.emu.pod_workers import in_workers, workers


def test_every_job_runs_once_on_several_threads() -> None:
    seen: list[int] = []
    threads: set[str] = set()
    barrier = threading.Barrier(2, timeout=5)  # two jobs must run at once, or this times out

    def job(i: int) -> None:
        if i < 2:
            barrier.wait()
        threads.add(threading.current_thread().name)
        seen.append(i)

    in_workers([lambda i=i: job(i) for i in range(10)], threading.Event())
    assert sorted(seen) == list(range(10))
    assert len(threads) >= 2 and 2 <= workers() <= 4


def test_the_first_failure_stops_what_has_not_started_and_is_raised() -> None:
    stop = threading.Event()
    ran: list[int] = []

    def job(i: int) -> None:
        if i == 0:
            raise RuntimeError("node 0 failed")
        stop.wait(5)  # a running job sees the failure (as a node's job does between pods)
        ran.append(i)

    with pytest.raises(RuntimeError, match="node 0 failed"):
        in_workers([lambda i=i: job(i) for i in range(20)], stop)
    assert stop.is_set()
    assert len(ran) <= workers() - 1  # only the jobs already running when job 0 failed


def test_one_job_runs_in_the_calling_thread() -> None:
    where: list[str] = []
    in_workers([lambda: where.append(threading.current_thread().name)], threading.Event())
    assert where == [threading.current_thread().name]


def test_an_interruption_while_waiting_stops_the_jobs_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C reaches the thread that waits: the build behind it must not run on to its end."""
    import testbed.emu.pod_workers as pod_workers

    stop = threading.Event()
    ran: list[int] = []
    started = threading.Event()

    def job(i: int) -> None:
        started.set()
        stop.wait(5)  # a running job ends at its next pod once stop is set
        ran.append(i)

    def interrupted_wait(futures: object) -> None:
        started.wait(5)
        raise KeyboardInterrupt

    monkeypatch.setattr(pod_workers, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        in_workers([lambda i=i: job(i) for i in range(20)], stop)
    assert stop.is_set()
    assert len(ran) <= workers()  # only the jobs already running; without stop, all 20 (100 s)
