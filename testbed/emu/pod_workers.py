"""Jobs run on every core at once, for the build of many pod sandboxes (emu/).

A 10,000-pod build is mostly the kernel's work done in the calling thread: each namespace's
setup (copy_net_ns), each veth pair's registration, each pod's addresses and routes. From one
thread that work ran on one core at a time, and every wait of that thread (for the rtnl lock,
for an RCU grace period, for the CPU another process held) left the machine's other core to
others. emu/pods.py makes each node's sandboxes one job (their namespaces, pairs and setup
are independent of every other node's) and runs the jobs here, one thread per core: what one
thread waits for, the other fills, and the Python between the system calls (which holds the
interpreter lock) overlaps the other thread's system calls (which release it).

Each job enters namespaces only in its own thread (testbed.netns, emu/netnsadd.py: unshare
and setns move the calling thread alone) and always returns. A build stops at its first
failure as it did from one thread: the failing job sets `stop` at once, the jobs not yet
started never start, and the running ones end at their next pod (they check `stop`); the
failure is raised once every job has ended, so none is left half-run behind the error.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait

MAX_WORKERS = 4  # past the cores, threads only queue for the rtnl lock


def workers() -> int:
    """Threads for the jobs: one per core this process may run on, 2 to MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(2, min(MAX_WORKERS, cores))


def in_workers(jobs: Sequence[Callable[[], None]], stop: threading.Event) -> None:
    """Run the jobs, in order of submission, on `workers()` threads; the first failure sets
    `stop` (no further job starts) and is raised after all of them ended. An interruption of
    this thread (Ctrl-C, a signal's exception) sets `stop` too, so the teardown behind it waits
    only for the pods in flight, not for the rest of the build."""

    def guarded(job: Callable[[], None]) -> None:
        if stop.is_set():
            return
        try:
            job()
        except BaseException:
            stop.set()
            raise

    if len(jobs) <= 1:
        for job in jobs:
            guarded(job)
        return
    with ThreadPoolExecutor(max_workers=min(workers(), len(jobs)), thread_name_prefix="tb-pods") as pool:
        futures = [pool.submit(guarded, job) for job in jobs]
        try:
            wait(futures)
        except BaseException:  # the pool's exit waits for its jobs: let them end at their next pod
            stop.set()
            raise
    for future in futures:
        future.result()
